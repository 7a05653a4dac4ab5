// stampede-openloop: an HTTP load generator for loopback targets whose clients have deadlines.
//
// Open loop (--rate): requests are sent on a fixed schedule (request i at t0 + i/rate),
// whatever the server does, and each one's latency is measured from its *intended* send time.
// A stalled server therefore shows its stall in full instead of being offered less load (wrk's
// closed loop, and its coordinated omission). Connections come from a pool of at most
// --connections; a request that finds none free waits for one, and that wait counts in its
// latency.
//
// Closed loop (--closed N): N clients, each sending its next request when the previous one is
// answered or abandoned, as wrk does, but unlike wrk a client gives up at its deadline.
//
// In both, a request unanswered --timeout ms after it was due is abandoned the way a real
// client abandons one: its connection is closed (the server can see it leave), it counts as a
// timeout, and the client goes on with a new connection. A connection closed or reset with no
// answer (the server died) counts as lost. Goodput is 2xx answered within the deadline.
//
// With --retry a failed request (a 5xx, a timeout, a lost or refused connection) is tried
// again, up to --retries more times, as a client library would: `naive` at once, `budget` at
// once while a retry budget allows (10 % of requests, 3 in reserve), `throttle` at once but
// every attempt first passes the SRE book's client-side throttle (reject locally with
// probability max(0, (requests - K·accepts) / (requests + 1)), K = 2, over the last 10 s),
// `polite` after the 503's Retry-After (or an exponential back-off from 100 ms), with jitter.
// The budget and the throttle belong to a client task: with --tasks N the open loop's
// requests come from N tasks in turn, as from the N processes of a calling service.
// Each attempt has the whole --timeout; with --deadline-header each carries the time it has
// left in X-Stampede-Deadline-Ms. A request counts once in goodput, by its first success.
//
// Prints a human summary, then one "STAMPEDE_WRK {json}" line in the format of
// loadtest/wrk/stampede.lua, so the driver parses both alike.

#include <CLI/CLI.hpp>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

/// Latencies in log buckets 2 % wide, as the wrk script keeps them.
struct histogram {
  std::map<long, long> buckets;
  long count = 0;
  double sum_us = 0, max_us = 0;
  void add(double us) {
    buckets[static_cast<long>(std::floor(std::log(std::max(us, 1.0)) / std::log(1.02)))]++;
    ++count;
    sum_us += us;
    max_us = std::max(max_us, us);
  }
  double percentile(double q) const {
    long rank = static_cast<long>(std::ceil(q * static_cast<double>(count))), seen = 0;
    for (auto [b, n] : buckets) {
      seen += n;
      if (seen >= rank) return std::min(std::pow(1.02, static_cast<double>(b) + 0.5), max_us);
    }
    return max_us;
  }
  std::string json_buckets() const {
    std::string s = "{";
    for (auto [b, n] : buckets)
      s += (s.size() > 1 ? "," : "") + ("\"" + std::to_string(b) + "\":" + std::to_string(n));
    return s + "}";
  }
};

/// What happened, second by second since the start: the shape of the run, not just its sum.
struct timeline {
  enum column { ok, rejected, other, timeout, lost, error, retry, throttled, columns };
  std::vector<std::array<long, columns>> seconds;
  clock_type::time_point start;
  void add(column c) {
    auto i =
        static_cast<std::size_t>(std::chrono::duration<double>(clock_type::now() - start).count());
    if (seconds.size() <= i) seconds.resize(i + 1, std::array<long, columns>{});
    ++seconds[i][c];
  }
  std::string json() const {
    std::string s = "[";
    for (const auto& row : seconds) {
      s += s.size() > 1 ? ",[" : "[";
      for (int c = 0; c < columns; ++c) s += (c ? "," : "") + std::to_string(row[c]);
      s += "]";
    }
    return s + "]";
  }
};

struct connection {
  explicit connection(asio::io_context& io) : stream(io) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct waiter {
  explicit waiter(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  std::unique_ptr<connection> given;
};

class generator {
 public:
  struct throttle_second {
    long second, requests, accepts;
  };
  /// One of the client tasks the open loop's requests come from in turn: each keeps its own
  /// retry budget and throttle window, as each task of a calling service does.
  struct client_task {
    double budget = 3;  ///< retries allowed now (3 in reserve, 0.1 per request, at most 10)
    std::deque<throttle_second> window;
  };

  generator(asio::io_context& io, tcp::endpoint target, std::string path, int seconds,
            int max_connections, std::chrono::milliseconds timeout)
      : io_(io),
        target_(target),
        path_(std::move(path)),
        seconds_(seconds),
        max_connections_(max_connections),
        timeout_(timeout) {}

  /// Open loop: request i at start + i/rate, whatever the server does.
  asio::awaitable<void> schedule(double rate) {
    rate_ = rate;
    begin();
    asio::steady_timer tick(io_);
    const long total = static_cast<long>(rate * seconds_);
    for (long i = 0; i < total; ++i) {
      auto intended = start_ + std::chrono::nanoseconds(static_cast<long>(i * 1e9 / rate));
      tick.expires_at(intended);
      co_await tick.async_wait(nothrow);
      ++scheduled_;
      ++in_flight_;
      auto& task = tasks_[static_cast<std::size_t>(i) % tasks_.size()];
      asio::co_spawn(io_, request(intended, task), [this](std::exception_ptr) { ended_one(); });
    }
    done_scheduling_ = true;
    if (in_flight_ == 0) finished();
  }

  /// Closed loop: `clients` clients, each sending its next request once the last one is
  /// answered or abandoned, until the duration is over.
  void run_closed(int clients, bool polite) {
    clients_ = clients;
    polite_ = polite;
    begin();
    for (int i = 0; i < clients; ++i) {
      ++in_flight_;
      asio::co_spawn(io_, client(), [this](std::exception_ptr) { ended_one(); });
    }
    done_scheduling_ = true;
  }

  /// Called once every request has ended.
  std::function<void()> finished = [] {};

  void report() const {
    double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    long answered = 0;
    for (auto [code, n] : codes_) answered += n;
    if (clients_ > 0) {
      std::printf("closed loop: %d clients over %ds; %ld requests sent", clients_, seconds_,
                  scheduled_);
    } else {
      std::printf("open loop: %ld requests scheduled at %.0f/s over %ds", scheduled_, rate_,
                  seconds_);
    }
    std::printf(
        "; %ld answered, %ld abandoned at the %ld ms deadline, %ld lost (connection closed with "
        "no answer), %ld connect errors, %ld waited for a connection\n",
        answered, timeouts_, static_cast<long>(timeout_.count()), lost_, connect_errors_, waited_);
    std::printf("latency, 2xx within the deadline: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
                ok_.percentile(0.5) / 1000, ok_.percentile(0.99) / 1000, ok_.max_us / 1000);
    std::string codes = "{";
    for (auto [c, n] : codes_)
      codes +=
          (codes.size() > 1 ? "," : "") + ("\"" + std::to_string(c) + "\":" + std::to_string(n));
    codes += "}";
    std::printf(
        "STAMPEDE_WRK {\"duration_us\":%.0f,\"requests\":%ld,\"bytes\":0,\"scheduled\":%ld,"
        "\"clients\":%d,\"deadline_ms\":%ld,"
        "\"waited_for_connection\":%ld,\"errors\":{\"connect\":%ld,\"read\":%ld,\"write\":%ld,"
        "\"status\":0,\"timeout\":%ld,\"lost\":%ld},\"codes\":%s,\"ok\":{\"count\":%ld,"
        "\"sum_us\":%.0f,\"max_us\":%.0f,\"growth\":1.02,\"buckets\":%s},\"all\":{\"p50_us\":%.0f,"
        "\"p99_us\":%.0f,\"max_us\":%.0f},\"timeline_columns\":[\"ok\",\"503\",\"other\","
        "\"timeout\",\"lost\",\"error\",\"retry\",\"throttled\"],\"retries\":%ld,"
        "\"throttled\":%ld,\"gave_up\":%ld,\"timeline\":%s}\n",
        elapsed * 1e6, answered, scheduled_, clients_, static_cast<long>(timeout_.count()), waited_,
        connect_errors_, read_errors_, write_errors_, timeouts_, lost_, codes.c_str(), ok_.count,
        ok_.sum_us, ok_.max_us, ok_.json_buckets().c_str(), all_.percentile(0.5),
        all_.percentile(0.99), all_.max_us, retries_sent_, throttled_, gave_up_,
        timeline_.json().c_str());
  }

 private:
  void begin() {
    start_ = clock_type::now();
    end_ = start_ + std::chrono::seconds(seconds_);
    timeline_.start = start_;
  }

  void ended_one() {
    if (--in_flight_ == 0 && done_scheduling_) finished();
  }

  /// Counts a failed operation: past the deadline it is a timeout (the client gave up and
  /// closed); a connection closed or reset with no answer is lost; anything else an error.
  void count_failure(const boost::system::error_code& ec, long& other) {
    if (ec == beast::error::timeout) {
      ++timeouts_;
      timeline_.add(timeline::timeout);
    } else if (ec == http::error::end_of_stream || ec == asio::error::eof ||
               ec == asio::error::connection_reset || ec == http::error::partial_message) {
      ++lost_;
      timeline_.add(timeline::lost);
    } else {
      ++other;
      timeline_.add(timeline::error);
    }
  }

  asio::awaitable<std::unique_ptr<connection>> connect(clock_type::time_point deadline) {
    auto c = std::make_unique<connection>(io_);
    c->stream.expires_at(deadline);
    auto [ec] = co_await c->stream.async_connect(target_, nothrow);
    if (ec) {
      count_failure(ec, connect_errors_);
      co_return nullptr;
    }
    c->stream.socket().set_option(tcp::no_delay(true));
    co_return c;
  }

  asio::awaitable<std::unique_ptr<connection>> acquire(clock_type::time_point deadline) {
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      co_return c;
    }
    if (open_ < max_connections_) {
      ++open_;
      auto c = co_await connect(deadline);
      if (!c) --open_;
      co_return c;
    }
    ++waited_;
    auto w = std::make_shared<waiter>(io_);
    waiters_.push_back(w);
    w->timer.expires_at(deadline);
    co_await w->timer.async_wait(nothrow);
    if (!w->given) {
      std::erase(waiters_, w);
      ++timeouts_;
      timeline_.add(timeline::timeout);
    }
    co_return std::move(w->given);
  }

  void release(std::unique_ptr<connection> c) {
    if (!waiters_.empty()) {
      auto w = waiters_.front();
      waiters_.pop_front();
      w->given = std::move(c);
      w->timer.cancel();
    } else {
      idle_.push_back(std::move(c));
    }
  }

  /// One exchange on `c` with `deadline`; the latency counts from `due`. Returns whether the
  /// connection may be used again. `retry_after` is set to a 503's Retry-After, if any.
  asio::awaitable<bool> exchange(connection& c, clock_type::time_point due,
                                 clock_type::time_point deadline, int* retry_after = nullptr,
                                 int* status_out = nullptr) {
    http::request<http::empty_body> req{http::verb::get, path_, 11};
    req.set(http::field::host, "127.0.0.1");
    if (deadline_header_) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      req.set("X-Stampede-Deadline-Ms", std::to_string(std::max<long>(0, left.count())));
    }
    for (const auto& [name, value] : headers_) req.set(name, value);
    c.stream.expires_at(deadline);
    auto [wec, wn] = co_await http::async_write(c.stream, req, nothrow);
    if (wec) {
      count_failure(wec, write_errors_);
      co_return false;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    auto [rec, rn] = co_await http::async_read(c.stream, c.buffer, parser, nothrow);
    if (rec) {
      // On a timeout the stream has closed the socket: the server sees the client leave.
      count_failure(rec, read_errors_);
      co_return false;
    }
    double us = std::chrono::duration<double, std::micro>(clock_type::now() - due).count();
    int status = parser.get().result_int();
    if (status_out != nullptr) *status_out = status;
    ++codes_[status];
    all_.add(us);
    if (status >= 200 && status < 300) {
      ok_.add(us);
      timeline_.add(timeline::ok);
    } else {
      timeline_.add(status == 503 ? timeline::rejected : timeline::other);
      if (status == 503 && retry_after != nullptr) {
        auto field = parser.get()[http::field::retry_after];
        int seconds = 0;
        auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), seconds);
        if (ec == std::errc() && p == field.data() + field.size()) *retry_after = seconds;
      }
    }
    co_return parser.get().keep_alive();  // the server closes after a 4xx, or at shutdown
  }

  /// One request of `task`: its first attempt at `intended`, then retries as the policy says.
  asio::awaitable<void> request(clock_type::time_point intended, client_task& task) {
    if (retry_ == retry_policy::budget) task.budget = std::min(10.0, task.budget + 0.1);
    asio::steady_timer pause(io_);
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) {
        ++retries_sent_;
        timeline_.add(timeline::retry);
      }
      if (retry_ == retry_policy::throttle && !throttle_admits(task)) {
        ++throttled_;  // rejected here, before it costs the servers anything
        timeline_.add(timeline::throttled);
        ++gave_up_;
        co_return;
      }
      auto deadline = (attempt == 0 ? intended : clock_type::now()) + timeout_;
      int status = 0, retry_after = -1;
      if (auto c = co_await acquire(deadline)) {
        if (co_await exchange(*c, intended, deadline, &retry_after, &status)) {
          release(std::move(c));
        } else {
          --open_;
        }
      }
      // The throttle's accepts: answers the servers chose to give, not overload or silence.
      if (status != 0 && status != 503 && status != 504) throttle_accepted(task);
      if (status >= 200 && status < 300) co_return;
      bool again = retry_ != retry_policy::none && attempt < retries_ &&
                   (status == 0 || status >= 500) && clock_type::now() < end_;
      if (again && retry_ == retry_policy::budget) {
        again = task.budget >= 1;
        if (again) task.budget -= 1;
      }
      if (!again) {
        ++gave_up_;
        co_return;
      }
      if (retry_ == retry_policy::polite) {
        // As told by Retry-After, else an exponential back-off; with jitter (0.5–1.5×) so
        // that clients turned away together do not come back together.
        std::uniform_real_distribution<double> jitter(0.5, 1.5);
        double wait_ms = retry_after > 0 ? retry_after * 1000.0 : 100.0 * (1 << attempt);
        pause.expires_after(
            std::chrono::milliseconds(static_cast<long>(wait_ms * jitter(random_))));
        co_await pause.async_wait(nothrow);
      }
    }
  }

  /// The SRE book's client-side throttle: lets an attempt go with probability
  /// 1 - max(0, (requests - K·accepts) / (requests + 1)), K = 2, over the last 10 s.
  bool throttle_admits(client_task& task) {
    roll_throttle(task);
    long requests = 0, accepts = 0;
    for (const auto& b : task.window) requests += b.requests, accepts += b.accepts;
    ++task.window.back().requests;
    double reject = std::max(0.0, (requests - 2.0 * accepts) / (requests + 1.0));
    return std::uniform_real_distribution<double>(0, 1)(random_) >= reject;
  }
  void throttle_accepted(client_task& task) {
    if (retry_ != retry_policy::throttle) return;
    roll_throttle(task);
    ++task.window.back().accepts;
  }
  void roll_throttle(client_task& task) {
    long now = static_cast<long>(std::chrono::duration<double>(clock_type::now() - start_).count());
    if (task.window.empty() || task.window.back().second != now) {
      task.window.push_back({now, 0, 0});
    }
    while (task.window.front().second <= now - 10) task.window.pop_front();
  }

  asio::awaitable<void> client() {
    std::unique_ptr<connection> c;
    asio::steady_timer pause(io_);
    while (clock_type::now() < end_) {
      auto due = clock_type::now();
      auto deadline = due + timeout_;
      if (!c) {
        c = co_await connect(deadline);
        if (!c) {
          // Refused (the server is down or restarting): a short pause, as a client would,
          // rather than a spin.
          pause.expires_after(std::chrono::milliseconds(50));
          co_await pause.async_wait(nothrow);
          continue;
        }
      }
      ++scheduled_;
      int retry_after = -1;
      if (!co_await exchange(*c, due, deadline, polite_ ? &retry_after : nullptr)) c.reset();
      if (retry_after > 0) {
        // A polite client waits as told, with jitter (0.5–1.5×) so clients turned away
        // together do not come back together.
        std::uniform_real_distribution<double> jitter(0.5, 1.5);
        pause.expires_after(
            std::chrono::milliseconds(static_cast<long>(retry_after * 1000 * jitter(random_))));
        if (pause.expiry() > end_) pause.expires_at(end_);
        co_await pause.async_wait(nothrow);
      }
    }
  }

 public:
  enum class retry_policy { none, naive, budget, throttle, polite };
  retry_policy retry_ = retry_policy::none;
  int retries_ = 3;
  std::vector<client_task> tasks_{1};
  bool deadline_header_ = false;
  std::vector<std::pair<std::string, std::string>> headers_;  ///< --header, on every request

 private:
  long retries_sent_ = 0, throttled_ = 0, gave_up_ = 0;
  asio::io_context& io_;
  tcp::endpoint target_;
  std::string path_;
  double rate_ = 0;
  int clients_ = 0;
  bool polite_ = false;
  std::mt19937 random_{12345};
  int seconds_;
  int max_connections_;
  std::chrono::milliseconds timeout_;
  clock_type::time_point start_, end_;
  std::vector<std::unique_ptr<connection>> idle_;
  std::deque<std::shared_ptr<waiter>> waiters_;
  int open_ = 0;
  long in_flight_ = 0;
  bool done_scheduling_ = false;
  long scheduled_ = 0, waited_ = 0, timeouts_ = 0, lost_ = 0, connect_errors_ = 0, read_errors_ = 0,
       write_errors_ = 0;
  std::map<int, long> codes_;
  histogram ok_, all_;
  timeline timeline_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stampede-openloop: HTTP load on a loopback target from clients with deadlines, at a fixed "
      "rate (open loop, latency from each request's intended send time) or from a fixed number "
      "of clients (--closed)."};
  std::string target = "127.0.0.1:8080", path = "/healthz";
  double rate = 100;
  int seconds = 10, connections = 1000, timeout_ms = 2000, closed = 0;
  bool polite = false;
  app.add_option("--target", target, "IP:PORT on loopback (127.0.0.0/8 or ::1)");
  bool allow_network = false;
  app.add_flag("--allow-network", allow_network,
               "let --target be any IP, such as a cluster Service's (the Kubernetes Job); "
               "without it the load never leaves this machine");
  app.add_option("--path", path, "request target");
  app.add_option("--rate", rate, "open loop: requests per second")
      ->check(CLI::Range(0.1, 100000.0));
  app.add_option("--closed", closed,
                 "closed loop: this many clients, each sending its next request when the last "
                 "is answered or abandoned (instead of --rate)")
      ->check(CLI::Range(1, 4000));
  app.add_flag("--polite", polite,
               "closed loop: after a 503 with Retry-After, a client waits that long (with "
               "jitter) before its next request, instead of asking again at once");
  app.add_option("--duration", seconds, "seconds")->check(CLI::Range(1, 600));
  app.add_option("--connections", connections, "open loop: most connections at once")
      ->check(CLI::Range(1, 4000));
  std::string retry = "none";
  int retries = 3;
  bool deadline_header = false;
  app.add_option("--retry", retry,
                 "open loop: what a failed request (5xx, timeout, lost or refused) does: none, "
                 "naive (again at once), budget (at once within a 10 % retry budget), throttle "
                 "(the SRE book's client-side throttle, K = 2, on every attempt) or polite (after "
                 "Retry-After, else a back-off)")
      ->check(CLI::IsMember({"none", "naive", "budget", "throttle", "polite"}));
  app.add_option("--retries", retries, "open loop: retries at most per request")
      ->check(CLI::Range(0, 10));
  int tasks = 1;
  app.add_option("--tasks", tasks,
                 "open loop: the requests come from this many client tasks in turn, each with "
                 "its own retry budget and throttle")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--deadline-header", deadline_header,
               "send the time an attempt has left in X-Stampede-Deadline-Ms");
  std::vector<std::string> headers;
  app.add_option("--header", headers,
                 "NAME: VALUE sent on every request (repeatable), e.g. "
                 "'X-Stampede-Criticality: SHEDDABLE'");
  app.add_option("--timeout", timeout_ms,
                 "the clients' deadline, ms from each request's due time: then the connection is "
                 "closed and the request counted as a timeout")
      ->check(CLI::Range(1, 60000));
  CLI11_PARSE(app, argc, argv);

  auto colon = target.rfind(':');
  boost::system::error_code ec;
  auto host = target.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto address = asio::ip::make_address(host, ec);
  if (colon == std::string::npos || ec || !(address.is_loopback() || allow_network)) {
    std::fprintf(stderr,
                 "stampede-openloop: --target must be a loopback IP:PORT, or any with "
                 "--allow-network (got %s)\n",
                 target.c_str());
    return 2;
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(std::stoi(target.substr(colon + 1))));

  asio::io_context io(1);
  generator gen(io, endpoint, path, seconds, connections, std::chrono::milliseconds(timeout_ms));
  // Every request has a deadline, so the run ends by itself; the guard is a last resort.
  // Retries stop at the end of the schedule, so at most one more timeout (and a back-off).
  asio::steady_timer guard(io, std::chrono::seconds(seconds) +
                                   std::chrono::milliseconds(timeout_ms) * 2 +
                                   std::chrono::seconds(15));
  guard.async_wait([&](boost::system::error_code e) {
    if (!e) io.stop();
  });
  gen.finished = [&] { guard.cancel(); };
  static const std::map<std::string, generator::retry_policy> policies = {
      {"none", generator::retry_policy::none},
      {"naive", generator::retry_policy::naive},
      {"budget", generator::retry_policy::budget},
      {"throttle", generator::retry_policy::throttle},
      {"polite", generator::retry_policy::polite}};
  gen.retry_ = policies.at(retry);
  gen.retries_ = retries;
  gen.tasks_.resize(static_cast<std::size_t>(tasks));
  gen.deadline_header_ = deadline_header;
  for (const auto& h : headers) {
    const auto colon = h.find(':');
    const auto value_at = h.find_first_not_of(' ', colon == std::string::npos ? 0 : colon + 1);
    if (colon == std::string::npos || colon == 0 || h.find_first_of(" \t") < colon) {
      std::fprintf(stderr, "stampede-openloop: --header must be NAME: VALUE (got %s)\n", h.c_str());
      return 2;
    }
    gen.headers_.emplace_back(h.substr(0, colon),
                              value_at == std::string::npos ? "" : h.substr(value_at));
  }
  if (closed > 0) {
    gen.run_closed(closed, polite);
  } else {
    asio::co_spawn(io, gen.schedule(rate), asio::detached);
  }
  io.run();
  gen.report();
  return 0;
}
