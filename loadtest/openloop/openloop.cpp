// stampede-openloop: an open-loop HTTP load generator for loopback targets.
//
// Requests are sent on a fixed schedule (request i at t0 + i/rate), whatever the server does,
// and each one's latency is measured from its *intended* send time. A stalled server therefore
// shows its stall in full instead of being offered less load (wrk's closed loop, and its
// coordinated omission). Connections come from a pool of at most --connections; a request that
// finds none free waits for one, and that wait counts in its latency.
//
// Prints a human summary, then one "STAMPEDE_WRK {json}" line in the format of
// loadtest/wrk/stampede.lua, so the driver parses both alike.

#include <CLI/CLI.hpp>
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
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

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
  generator(asio::io_context& io, tcp::endpoint target, std::string path, double rate, int seconds,
            int max_connections, std::chrono::milliseconds timeout)
      : io_(io),
        target_(target),
        path_(std::move(path)),
        rate_(rate),
        seconds_(seconds),
        max_connections_(max_connections),
        timeout_(timeout) {}

  asio::awaitable<void> schedule() {
    start_ = clock_type::now();
    asio::steady_timer tick(io_);
    const long total = static_cast<long>(rate_ * seconds_);
    for (long i = 0; i < total; ++i) {
      auto intended = start_ + std::chrono::nanoseconds(static_cast<long>(i * 1e9 / rate_));
      tick.expires_at(intended);
      co_await tick.async_wait(nothrow);
      ++scheduled_;
      ++in_flight_;
      asio::co_spawn(io_, request(intended), [this](std::exception_ptr) {
        if (--in_flight_ == 0 && done_scheduling_) finished();
      });
    }
    done_scheduling_ = true;
    if (in_flight_ == 0) finished();
  }

  /// Called once every scheduled request has ended.
  std::function<void()> finished = [] {};

  void report() const {
    double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    long answered = 0;
    for (auto [code, n] : codes_) answered += n;
    std::printf(
        "open loop: %ld requests scheduled at %.0f/s over %ds; %ld answered, %ld timeouts, "
        "%ld connect errors, %ld waited for a connection\n",
        scheduled_, rate_, seconds_, answered, timeouts_, connect_errors_, waited_);
    std::printf("latency from intended send time, 2xx: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
                ok_.percentile(0.5) / 1000, ok_.percentile(0.99) / 1000, ok_.max_us / 1000);
    std::string codes = "{";
    for (auto [c, n] : codes_)
      codes +=
          (codes.size() > 1 ? "," : "") + ("\"" + std::to_string(c) + "\":" + std::to_string(n));
    codes += "}";
    std::printf(
        "STAMPEDE_WRK {\"duration_us\":%.0f,\"requests\":%ld,\"bytes\":0,\"scheduled\":%ld,"
        "\"waited_for_connection\":%ld,\"errors\":{\"connect\":%ld,\"read\":%ld,\"write\":%ld,"
        "\"status\":0,\"timeout\":%ld},\"codes\":%s,\"ok\":{\"count\":%ld,\"sum_us\":%.0f,"
        "\"max_us\":%.0f,\"growth\":1.02,\"buckets\":%s},\"all\":{\"p50_us\":%.0f,\"p99_us\":%.0f,"
        "\"max_us\":%.0f}}\n",
        elapsed * 1e6, answered, scheduled_, waited_, connect_errors_, read_errors_, write_errors_,
        timeouts_, codes.c_str(), ok_.count, ok_.sum_us, ok_.max_us, ok_.json_buckets().c_str(),
        all_.percentile(0.5), all_.percentile(0.99), all_.max_us);
  }

 private:
  asio::awaitable<std::unique_ptr<connection>> acquire(clock_type::time_point deadline) {
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      co_return c;
    }
    if (open_ < max_connections_) {
      ++open_;
      auto c = std::make_unique<connection>(io_);
      c->stream.expires_at(deadline);
      auto [ec] = co_await c->stream.async_connect(target_, nothrow);
      if (ec) {
        --open_;
        ++(ec == beast::error::timeout ? timeouts_ : connect_errors_);
        co_return nullptr;
      }
      c->stream.socket().set_option(tcp::no_delay(true));
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

  asio::awaitable<void> request(clock_type::time_point intended) {
    auto deadline = intended + timeout_;
    auto c = co_await acquire(deadline);
    if (!c) co_return;
    http::request<http::empty_body> req{http::verb::get, path_, 11};
    req.set(http::field::host, "127.0.0.1");
    c->stream.expires_at(deadline);
    auto [wec, wn] = co_await http::async_write(c->stream, req, nothrow);
    if (wec) {
      ++(wec == beast::error::timeout ? timeouts_ : write_errors_);
      --open_;
      co_return;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    auto [rec, rn] = co_await http::async_read(c->stream, c->buffer, parser, nothrow);
    if (rec) {
      ++(rec == beast::error::timeout ? timeouts_ : read_errors_);
      --open_;
      co_return;
    }
    double us = std::chrono::duration<double, std::micro>(clock_type::now() - intended).count();
    int status = parser.get().result_int();
    ++codes_[status];
    all_.add(us);
    if (status >= 200 && status < 300) ok_.add(us);
    if (parser.get().keep_alive()) {
      release(std::move(c));
    } else {
      --open_;  // the server closes after this answer (a 4xx, or shutdown)
    }
  }

  asio::io_context& io_;
  tcp::endpoint target_;
  std::string path_;
  double rate_;
  int seconds_;
  int max_connections_;
  std::chrono::milliseconds timeout_;
  clock_type::time_point start_;
  std::vector<std::unique_ptr<connection>> idle_;
  std::deque<std::shared_ptr<waiter>> waiters_;
  int open_ = 0;
  long in_flight_ = 0;
  bool done_scheduling_ = false;
  long scheduled_ = 0, waited_ = 0, timeouts_ = 0, connect_errors_ = 0, read_errors_ = 0,
       write_errors_ = 0;
  std::map<int, long> codes_;
  histogram ok_, all_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stampede-openloop: fixed-rate (open-loop) HTTP load on a loopback target; "
      "latency is measured from each request's intended send time."};
  std::string target = "127.0.0.1:8080", path = "/healthz";
  double rate = 100;
  int seconds = 10, connections = 1000, timeout_ms = 2000;
  app.add_option("--target", target, "IP:PORT on loopback (127.0.0.0/8 or ::1)");
  app.add_option("--path", path, "request target");
  app.add_option("--rate", rate, "requests per second")->check(CLI::Range(0.1, 100000.0));
  app.add_option("--duration", seconds, "seconds")->check(CLI::Range(1, 600));
  app.add_option("--connections", connections, "most connections at once")
      ->check(CLI::Range(1, 4000));
  app.add_option("--timeout", timeout_ms, "ms from intended send time")
      ->check(CLI::Range(1, 60000));
  CLI11_PARSE(app, argc, argv);

  auto colon = target.rfind(':');
  boost::system::error_code ec;
  auto host = target.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto address = asio::ip::make_address(host, ec);
  if (colon == std::string::npos || ec || !address.is_loopback()) {
    std::fprintf(stderr, "stampede-openloop: --target must be a loopback IP:PORT (got %s)\n",
                 target.c_str());
    return 2;
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(std::stoi(target.substr(colon + 1))));

  asio::io_context io(1);
  generator gen(io, endpoint, path, rate, seconds, connections,
                std::chrono::milliseconds(timeout_ms));
  // Every request has a deadline, so the run ends by itself; the guard is a last resort.
  asio::steady_timer guard(io, std::chrono::seconds(seconds) +
                                   std::chrono::milliseconds(timeout_ms) + std::chrono::seconds(5));
  guard.async_wait([&](boost::system::error_code e) {
    if (!e) io.stop();
  });
  gen.finished = [&] { guard.cancel(); };
  asio::co_spawn(io, gen.schedule(), asio::detached);
  io.run();
  gen.report();
  return 0;
}
