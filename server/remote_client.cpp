#include "server/remote_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <string>

namespace stampede {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct remote_client::connection {
  explicit connection(asio::io_context& io) : stream(io) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

/// One call, from call() until `done`: its attempts, one at a time.
struct remote_client::pending {
  explicit pending(asio::io_context& io) : timer(io) {}
  struct stop_fn {
    remote_client* self;
    std::weak_ptr<pending> call;
    void operator()() const noexcept {
      asio::post(self->io_, [self = self, call = call] {
        if (auto p = call.lock()) self->cancel(p);
      });
    }
  };
  int ms = 0;
  clock::time_point deadline;  ///< the caller's
  std::function<void(call_outcome)> done;
  std::optional<std::stop_callback<stop_fn>> on_stop;
  asio::steady_timer timer;  ///< the attempt's deadline while it waits in line
  clock::time_point attempt_deadline;
  int attempt = 0;
  bool ended = false, cancelled = false, in_line = false;
  std::list<pending_ptr>::iterator line_place, live_place;
  std::unique_ptr<connection> conn;  ///< the connection of the exchange under way
  http::request<http::empty_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
};

remote_client::settings remote_client::settings_of(const config& c) {
  return {c.downstream.capacity, c.downstream.timeout_ms, c.downstream.retries,
          c.downstream.retry_budget_percent, c.downstream.propagate_deadline};
}

remote_client::remote_client(http_url target, const settings& s, metrics& m)
    : target_(std::move(target)),
      stats_(m),
      budget_(s.retry_budget_percent),
      guard_(io_.get_executor()),
      capacity_(s.capacity),
      timeout_ms_(s.timeout_ms),
      retries_(s.retries),
      propagate_(s.propagate_deadline) {
  thread_ = std::thread([this] { io_.run(); });
}

remote_client::~remote_client() {
  asio::post(io_, [this] {
    auto calls = live_;  // cancel() ends some at once, which takes them out of live_
    for (auto& p : calls) cancel(p);
    idle_.clear();
    guard_.reset();  // run() returns once the cancelled exchanges have completed
  });
  thread_.join();
}

void remote_client::configure(const settings& s) {
  capacity_.store(s.capacity);
  timeout_ms_.store(s.timeout_ms);
  retries_.store(s.retries);
  propagate_.store(s.propagate_deadline);
  budget_.set_percent(s.retry_budget_percent);
  asio::post(io_, [this] { give_back(nullptr, false); });  // a raise lets the line in
}

downstream::snapshot remote_client::stats() const {
  return {capacity_.load(), published_busy_.load(), published_waiting_.load()};
}

void remote_client::publish() {
  published_busy_.store(busy_);
  published_waiting_.store(static_cast<int>(line_.size()));
}

bool remote_client::has_room() const {
  int cap = capacity_.load();
  return cap == 0 || busy_ < cap;
}

void remote_client::call(int ms, clock::time_point deadline, const std::stop_token& stop,
                         std::function<void(call_outcome)> done) {
  auto p = std::make_shared<pending>(io_);
  p->ms = ms;
  p->deadline = deadline;
  p->done = std::move(done);
  asio::post(io_, [this, p, stop] {
    p->live_place = live_.insert(live_.end(), p);
    budget_.deposit();
    // Registered here, on the client's thread: a stop requested already runs it at once,
    // which posts the cancellation behind this.
    p->on_stop.emplace(stop, pending::stop_fn{this, p});
    start_attempt(p);
  });
}

void remote_client::start_attempt(const pending_ptr& p) {
  if (p->ended) return;
  auto now = clock::now();
  if (now >= p->deadline) return finish(p, call_outcome::deadline_exceeded);
  ++p->attempt;
  p->attempt_deadline = std::min(p->deadline, now + std::chrono::milliseconds(timeout_ms_.load()));
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    ++busy_;
    exchange(p, std::move(c), false);
  } else if (has_room()) {
    ++busy_;
    exchange(p, std::make_unique<connection>(io_), true);
  } else {
    p->line_place = line_.insert(line_.end(), p);
    p->in_line = true;
    p->timer.expires_at(p->attempt_deadline);
    p->timer.async_wait([this, p](boost::system::error_code ec) {
      if (ec || !p->in_line) return;
      line_.erase(p->line_place);
      p->in_line = false;
      publish();
      attempt_ended(p, p->attempt_deadline == p->deadline ? call_outcome::deadline_exceeded
                                                          : call_outcome::timeout);
    });
  }
  publish();
}

void remote_client::exchange(const pending_ptr& p, std::unique_ptr<connection> c, bool fresh) {
  p->conn = std::move(c);
  auto& stream = p->conn->stream;
  stream.expires_at(p->attempt_deadline);
  auto failed = [this, p, fresh](boost::system::error_code ec) {
    call_outcome o = call_outcome::lost;
    if (p->cancelled) {
      o = call_outcome::cancelled;
    } else if (ec == beast::error::timeout) {
      o = p->attempt_deadline == p->deadline ? call_outcome::deadline_exceeded
                                             : call_outcome::timeout;
    } else if (ec == asio::error::connection_refused || ec == asio::error::host_not_found) {
      o = call_outcome::refused;
    } else if (!fresh) {
      // A kept-alive connection the other side had closed while idle: the request never
      // reached it, so it goes again on a new connection, as HTTP clients do.
      p->conn.reset();
      return exchange(p, std::make_unique<connection>(io_), true);
    }
    p->conn.reset();
    give_back(nullptr, true);
    attempt_ended(p, o);
  };
  auto read = [this, p, failed](boost::system::error_code ec, std::size_t) {
    if (ec) return failed(ec);
    p->parser.emplace();
    p->parser->body_limit(1 << 16);
    http::async_read(p->conn->stream, p->conn->buffer, *p->parser,
                     [this, p, failed](boost::system::error_code ec, std::size_t) {
                       if (ec) return failed(ec);
                       const auto& res = p->parser->get();
                       const int status = res.result_int();
                       call_outcome o = call_outcome::bad_answer;
                       if (status >= 200 && status < 300) {
                         o = call_outcome::ok;
                       } else if (status == 503) {
                         o = call_outcome::overloaded;
                       } else if (status == 504) {
                         o = res.body().find("\"deadline_exceeded\"") != std::string::npos
                                 ? call_outcome::deadline_exceeded
                                 : call_outcome::timeout;
                       }
                       const bool reusable = res.keep_alive() && !p->cancelled;
                       give_back(reusable ? std::move(p->conn) : nullptr, true);
                       p->conn.reset();
                       attempt_ended(p, p->cancelled ? call_outcome::cancelled : o);
                     });
  };
  p->req = {http::verb::get, target_.path + "?ms=" + std::to_string(p->ms), 11};
  p->req.set(http::field::host, target_.host);
  if (propagate_.load()) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(p->attempt_deadline - clock::now());
    p->req.set("X-Stampede-Deadline-Ms", std::to_string(std::max<long>(0, left.count())));
  }
  if (!fresh) {
    http::async_write(stream, p->req, std::move(read));
    return;
  }
  boost::system::error_code rec;
  tcp::resolver resolver(io_);
  // Names are resolved on this thread: IP literals at once; a name (a compose service) only
  // when a connection is opened.
  auto endpoints = resolver.resolve(target_.host, std::to_string(target_.port), rec);
  if (rec) return failed(rec);
  stream.async_connect(endpoints, [p, failed, read](boost::system::error_code ec, tcp::endpoint) {
    if (ec) return failed(ec);
    p->conn->stream.socket().set_option(tcp::no_delay(true), ec);
    http::async_write(p->conn->stream, p->req, read);
  });
}

void remote_client::give_back(std::unique_ptr<connection> c, bool slot_freed) {
  if (slot_freed) --busy_;
  const int cap = capacity_.load();
  if (c != nullptr && (cap == 0 || busy_ + static_cast<int>(idle_.size()) < cap)) {
    idle_.push_back(std::move(c));  // kept alive; past a (lowered) capacity it is closed
  }
  while (!line_.empty() && (!idle_.empty() || has_room())) {
    auto w = line_.front();
    line_.pop_front();
    w->in_line = false;
    w->timer.cancel();
    ++busy_;
    if (!idle_.empty()) {
      auto next = std::move(idle_.back());
      idle_.pop_back();
      exchange(w, std::move(next), false);
    } else {
      exchange(w, std::make_unique<connection>(io_), true);
    }
  }
  publish();
}

void remote_client::attempt_ended(const pending_ptr& p, call_outcome o) {
  if (p->ended) return;
  stats_.downstream_calls(o).Increment();
  if (o == call_outcome::ok || p->cancelled || !retryable(o) || p->attempt > retries_.load() ||
      clock::now() >= p->deadline) {
    return finish(p, o);
  }
  if (!budget_.try_withdraw()) {
    stats_.downstream_retries_denied().Increment();
    return finish(p, o);
  }
  stats_.downstream_retries().Increment();
  start_attempt(p);
}

void remote_client::finish(const pending_ptr& p, call_outcome o) {
  if (p->ended) return;
  p->ended = true;
  if (p->in_line) {
    line_.erase(p->line_place);
    p->in_line = false;
    p->timer.cancel();
    publish();
  }
  live_.erase(p->live_place);
  auto done = std::move(p->done);
  done(o);
}

void remote_client::cancel(const pending_ptr& p) {
  if (p->ended || p->cancelled) return;
  p->cancelled = true;
  if (p->conn != nullptr) {
    boost::system::error_code ec;
    p->conn->stream.socket().close(ec);  // the exchange completes as cancelled
    return;
  }
  if (p->in_line) {
    line_.erase(p->line_place);
    p->in_line = false;
    p->timer.cancel();
    publish();
  }
  stats_.downstream_calls(call_outcome::cancelled).Increment();
  finish(p, call_outcome::cancelled);
}

}  // namespace stampede
