#include "server/remote_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

namespace stampede {
namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

/// A stand-in dependency on 127.0.0.1 (port 0): answers each request with the status `answer`
/// gives (0: never answers), and keeps what it saw.
class fake_dependency {
 public:
  explicit fake_dependency(std::function<int(int n)> answer) : answer_(std::move(answer)) {
    acceptor_.non_blocking(false);
    accepting_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        boost::system::error_code ec;
        tcp::socket s(io_);
        acceptor_.accept(s, ec);
        if (ec) return;
        std::lock_guard lock(mutex_);
        ++connections_;
        serving_.emplace_back([this, s = std::move(s)]() mutable { serve(s); });
      }
    });
  }
  ~fake_dependency() {
    // The blocked accept ends with an error once its socket is shut down; the acceptor is
    // closed only after that thread has ended (closing it under the accept is a race).
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accepting_ = {};
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      for (auto* s : open_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    serving_.clear();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  http_url url() const { return {"127.0.0.1", port(), "/work/io"}; }
  int connections() {
    std::lock_guard lock(mutex_);
    return connections_;
  }
  std::vector<http::request<http::string_body>> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  void serve(tcp::socket& s) {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      open_.push_back(&s);
    }
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buffer, req, ec);
      if (ec) break;
      int n;
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(req);
        n = static_cast<int>(seen_.size());
      }
      const int status = answer_(n);
      if (status == 0) continue;  // never answered: the caller's timeout ends it
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.body() = "{}";
      res.keep_alive(true);
      res.prepare_payload();
      http::write(s, res, ec);
      if (ec) break;
    }
    std::lock_guard lock(mutex_);
    std::erase(open_, &s);
  }

  std::function<int(int)> answer_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_{io_, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  std::mutex mutex_;
  int connections_ = 0;
  bool closing_ = false;
  std::vector<tcp::socket*> open_;
  std::vector<http::request<http::string_body>> seen_;
  std::vector<std::jthread> serving_;
  std::jthread accepting_;
};

/// One call, waited for (at most 10 s).
call_outcome call(remote_client& c, int ms,
                  clock_type::time_point deadline = clock_type::time_point::max(),
                  std::stop_token stop = {}) {
  std::promise<call_outcome> got;
  auto f = got.get_future();
  c.call(ms, deadline, stop, [&](call_outcome o) { got.set_value(o); });
  if (f.wait_for(10s) != std::future_status::ready)
    throw std::runtime_error("the call never ended");
  return f.get();
}

remote_client::settings with(int timeout_ms, int retries = 0, int budget = 0,
                             bool propagate = false, int capacity = 4) {
  return {capacity, timeout_ms, retries, budget, propagate};
}

TEST(RemoteClientTest, an_answer_is_ok_and_the_connection_is_kept_for_the_next_call) {
  fake_dependency dep([](int) { return 200; });
  metrics m;
  remote_client c(dep.url(), with(2000), m);
  EXPECT_EQ(call(c, 5), call_outcome::ok);
  EXPECT_EQ(call(c, 7), call_outcome::ok);
  EXPECT_EQ(dep.connections(), 1) << "kept alive and reused";
  ASSERT_EQ(dep.seen().size(), 2u);
  EXPECT_EQ(dep.seen()[0].target(), "/work/io?ms=5");
  EXPECT_EQ(m.downstream_calls(call_outcome::ok).Value(), 2);
}

TEST(RemoteClientTest, a_503_is_overloaded_and_a_retry_is_made_within_the_budget) {
  fake_dependency dep([](int n) { return n == 1 ? 503 : 200; });
  metrics m;
  remote_client c(dep.url(), with(2000, 1, 100), m);
  EXPECT_EQ(call(c, 1), call_outcome::ok) << "the retry was answered";
  EXPECT_EQ(dep.seen().size(), 2u);
  EXPECT_EQ(m.downstream_calls(call_outcome::overloaded).Value(), 1);
  EXPECT_EQ(m.downstream_retries().Value(), 1);
}

TEST(RemoteClientTest, retries_stop_where_the_budget_does) {
  {
    // No budget (0): every retry downstream.retries allows is made.
    fake_dependency dep([](int) { return 503; });
    metrics m;
    remote_client c(dep.url(), with(2000, 3, 0), m);
    EXPECT_EQ(call(c, 1), call_outcome::overloaded);
    EXPECT_EQ(dep.seen().size(), 4u);
    EXPECT_EQ(m.downstream_retries_denied().Value(), 0);
  }
  {
    // 1 %: the reserve of 3 retries, then the budget says no.
    fake_dependency dep([](int) { return 503; });
    metrics m;
    remote_client c(dep.url(), with(2000, 10, 1), m);
    EXPECT_EQ(call(c, 1), call_outcome::overloaded);
    EXPECT_EQ(dep.seen().size(), 4u) << "the first attempt and three retries";
    EXPECT_EQ(m.downstream_retries().Value(), 3);
    EXPECT_EQ(m.downstream_retries_denied().Value(), 1);
  }
}

TEST(RemoteClientTest, nobody_listening_is_refused) {
  std::uint16_t port;
  {
    fake_dependency gone([](int) { return 200; });
    port = gone.port();
  }
  metrics m;
  remote_client c({"127.0.0.1", port, "/work/io"}, with(2000), m);
  EXPECT_EQ(call(c, 1), call_outcome::refused);
}

TEST(RemoteClientTest, no_answer_within_the_timeout_is_a_timeout_and_the_deadline_is_sent) {
  fake_dependency dep([](int) { return 0; });
  metrics m;
  remote_client c(dep.url(), with(200, 0, 0, true), m);
  const auto t0 = clock_type::now();
  EXPECT_EQ(call(c, 1), call_outcome::timeout);
  const auto took = clock_type::now() - t0;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2s);
  ASSERT_EQ(dep.seen().size(), 1u);
  const auto left = std::stoi(std::string(dep.seen()[0]["X-Stampede-Deadline-Ms"]));
  EXPECT_GT(left, 0);
  EXPECT_LE(left, 200) << "the attempt's deadline, sent along";
}

TEST(RemoteClientTest, a_deadline_already_passed_is_never_sent) {
  fake_dependency dep([](int) { return 200; });
  metrics m;
  remote_client c(dep.url(), with(2000), m);
  EXPECT_EQ(call(c, 1, clock_type::now() - 1ms), call_outcome::deadline_exceeded);
  EXPECT_TRUE(dep.seen().empty());
}

TEST(RemoteClientTest, a_stop_ends_the_call_as_cancelled) {
  fake_dependency dep([](int) { return 0; });
  metrics m;
  remote_client c(dep.url(), with(5000), m);
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  const auto t0 = clock_type::now();
  EXPECT_EQ(call(c, 1, clock_type::time_point::max(), stop.get_token()), call_outcome::cancelled);
  EXPECT_LT(clock_type::now() - t0, 2s) << "not the 5 s timeout";
}

TEST(RemoteClientTest, past_its_pool_a_call_waits_in_line) {
  fake_dependency dep([](int n) { return n == 1 ? 0 : 200; });  // the first holds its connection
  metrics m;
  remote_client c(dep.url(), with(3000, 0, 0, false, 1), m);
  // The first ends at its caller's deadline (300 ms), well within the second's timeout.
  std::promise<call_outcome> first;
  c.call(1, clock_type::now() + 300ms, {}, [&](call_outcome o) { first.set_value(o); });
  for (int i = 0; i < 1000 && c.stats().in_use < 1; ++i) std::this_thread::sleep_for(1ms);
  std::promise<call_outcome> second;
  c.call(1, clock_type::time_point::max(), {}, [&](call_outcome o) { second.set_value(o); });
  for (int i = 0; i < 1000 && c.stats().waiting < 1; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(c.stats().capacity, 1);
  EXPECT_EQ(c.stats().waiting, 1);
  EXPECT_EQ(first.get_future().get(), call_outcome::deadline_exceeded);
  EXPECT_EQ(second.get_future().get(), call_outcome::ok) << "served once the first let go";
}

}  // namespace
}  // namespace stampede
