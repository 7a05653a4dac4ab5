// The session on beast::test::stream: pipelining, a client leaving mid-work, end of stream,
// and a failure injected at every operation in turn (test::fail_count).

#include "server/session.hpp"

#include <gtest/gtest.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "server/session_impl.hpp"

namespace stampede {
namespace {

namespace asio = boost::asio;
namespace test = boost::beast::test;
using boost::system::error_code;

/// \brief tcp_connection's interface over beast::test::stream. A test stream can neither peek
/// nor cancel a read, so a watch is a one-byte read whose byte is handed to the next read (as a
/// peek leaves it in the socket); a cancelled watch is answered operation_aborted at once while
/// its read stays pending, for the next watch to take over; and a read asked for meanwhile
/// waits for it (as a read would follow the cancelled peek).
class test_connection {
 public:
  using executor_type = test::stream::executor_type;
  using read_handler = asio::any_completion_handler<void(error_code, std::size_t)>;
  using watch_handler = asio::any_completion_handler<void(error_code)>;

  explicit test_connection(test::stream s)
      : s_(std::move(s)), st_(std::make_shared<state>(s_.get_executor())) {}
  test_connection(test_connection&&) = default;

  executor_type get_executor() { return s_.get_executor(); }
  void expires_after(std::chrono::steady_clock::duration) {}  // a test stream has no deadline
  void expires_never() {}

  template <class Token>
  auto async_read_some(asio::mutable_buffer b, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, asio::mutable_buffer b) {
          if (!st_->held.empty()) {
            st_->complete(read_handler(std::move(handler)), {}, st_->take_held(b));
          } else if (st_->reading_byte) {
            st_->waiting.emplace(b, read_handler(std::move(handler)));
          } else {
            s_.async_read_some(b, std::move(handler));
          }
        },
        token, b);
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    return s_.async_write_some(b, std::forward<Token>(token));
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& b, error_code& ec) {
    return s_.write_some(b, ec);
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& b) {
    return s_.write_some(b);
  }

  std::size_t read_now(asio::mutable_buffer room) {
    std::size_t n = st_->take_held(room);
    if (n < room.size() && s_.buffer().size() > 0) {
      error_code ec;
      n += s_.read_some(room + n, ec);
    }
    return n;
  }
  std::size_t available() { return st_->held.size() + s_.buffer().size(); }

  template <class Handler>
  void async_watch(Handler&& handler) {
    cancel();
    if (!st_->held.empty()) {  // readable now, as a peek finds bytes left in the socket
      asio::post(st_->ex, [h = std::forward<Handler>(handler)]() mutable { h(error_code{}); });
      return;
    }
    st_->watcher.emplace(std::forward<Handler>(handler));
    if (st_->reading_byte) return;  // the read under way reports to this watch
    st_->reading_byte = true;
    s_.async_read_some(asio::buffer(&st_->byte, 1),
                       [st = st_](error_code ec, std::size_t n) { st->byte_read(ec, n); });
  }
  bool peer_gone() { return false; }  // a policy in these tests never asks
  void cancel() {
    if (auto w = std::exchange(st_->watcher, std::nullopt)) {
      asio::post(st_->ex, [w = std::move(*w)]() mutable {
        std::move(w)(error_code(asio::error::operation_aborted));
      });
    }
  }
  void shutdown_send() { s_.close(); }
  void close() { s_.close(); }

 private:
  /// What the pending one-byte read finds when it completes (it may outlive the connection).
  struct state {
    explicit state(executor_type e) : ex(std::move(e)) {}
    std::size_t take_held(asio::mutable_buffer b) {
      std::size_t n = asio::buffer_copy(b, asio::buffer(held));
      held.erase(0, n);
      return n;
    }
    void complete(read_handler h, error_code ec, std::size_t n) {
      asio::post(ex, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
    }
    void byte_read(error_code ec, std::size_t n) {
      reading_byte = false;
      if (n == 1) held.push_back(byte);
      if (auto w = std::exchange(watcher, std::nullopt)) std::move (*w)(ec);
      if (auto r = std::exchange(waiting, std::nullopt)) {
        if (!held.empty()) {
          complete(std::move(r->second), {}, take_held(r->first));
        } else {
          complete(std::move(r->second), ec ? ec : asio::error::eof, 0);
        }
      }
    }
    executor_type ex;
    std::string held;  ///< bytes a watch took, for the next read
    char byte = 0;
    bool reading_byte = false;
    std::optional<watch_handler> watcher;
    std::optional<std::pair<asio::mutable_buffer, read_handler>> waiting;
  };

  test::stream s_;
  std::shared_ptr<state> st_;
};

/// A policy the test drives: runs each task at once (`inline_run`), or holds it until the
/// test runs it, and records the clients that left.
class test_policy final : public execution_policy {
 public:
  explicit test_policy(bool inline_run)
      : execution_policy(mode_kind::bounded), inline_run_(inline_run) {}
  void submit(std::shared_ptr<task> t) override {
    if (inline_run_) {
      t->run();
    } else {
      held.push_back(std::move(t));
    }
  }
  void client_gone(const std::shared_ptr<task>& t) override {
    gone.push_back(t);
    t->cancel_running();
  }
  void reconfigure(const config&) override {}
  void stop_all() override {}

  std::vector<std::shared_ptr<task>> held;
  std::vector<std::shared_ptr<task>> gone;

 private:
  bool inline_run_;
};

/// One server-side session on a test stream, and the client end of it.
struct rig {
  explicit rig(bool inline_run, test::fail_count* fc = nullptr)
      : policy(std::make_shared<test_policy>(inline_run)),
        cfg_slot(std::make_shared<const config>()),
        policy_slot(policy),
        fe{stats, cfg_slot, policy_slot, dependency, lab},
        server_end(fc ? test::stream(io, *fc) : test::stream(io)),
        client(io) {
    client.connect(server_end);
    auto s = std::make_shared<session<test_connection>>(test_connection(std::move(server_end)), fe,
                                                        lane);
    watched = s;
    s->start();
  }
  ~rig() {
    // The client leaves and what that completes runs: a read still waiting behind the
    // stand-in's pending one-byte read holds the session, which holds that read.
    client.close();
    received();
    policy->held.clear();
    policy->gone.clear();
  }
  /// Runs what is ready (at most `max_handlers`: a watch that fires again and again would
  /// spin), then returns what the client has been sent so far.
  std::string received() {
    io.restart();
    for (handlers_run = 0; handlers_run < max_handlers && io.poll_one() > 0; ++handlers_run) {
    }
    std::string out = client.str();
    client.clear();
    return out;
  }
  /// stampede_http_requests_total of /healthz with `status`, as /metrics shows it.
  double counted(int status) {
    std::istringstream text(stats.serialize());
    const std::string code = "code=\"" + std::to_string(status) + "\"";
    for (std::string line; std::getline(text, line);) {
      if (line.starts_with("stampede_http_requests_total{") &&
          line.find(code) != std::string::npos &&
          line.find("handler=\"healthz\"") != std::string::npos &&
          line.find("mode=\"bounded\"") != std::string::npos) {
        return std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return 0;
  }

  metrics stats;
  downstream dependency;
  labs lab;
  std::shared_ptr<test_policy> policy;
  shared_slot<const config> cfg_slot;
  shared_slot<execution_policy> policy_slot;
  front_end fe;
  // Destroyed before the front end: the handlers it still holds hold the session.
  asio::io_context io;
  completion_lane lane{io.get_executor()};
  test::stream server_end;
  test::stream client;
  std::weak_ptr<session<test_connection>> watched;
  static constexpr int max_handlers = 1000;
  int handlers_run = 0;  ///< by the last received()
};

constexpr std::string_view healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

int answers_in(const std::string& s) {
  int n = 0;
  for (auto at = s.find("HTTP/1.1 200"); at != std::string::npos;
       at = s.find("HTTP/1.1 200", at + 1)) {
    ++n;
  }
  return n;
}

// Two requests sent in one write are both answered, in order, on the same connection.
TEST(SessionTest, pipelined_requests_sent_together_are_answered_in_order) {
  rig r(/*inline_run=*/true);
  r.client.write_some(asio::buffer(std::string(healthz) + std::string(healthz)));
  std::string out = r.received();
  EXPECT_EQ(answers_in(out), 2) << out;
  EXPECT_EQ(r.fe.in_flight.load(), 0);
  EXPECT_EQ(r.fe.open_connections.load(), 1);  // keep-alive: still open
}

// A request that arrives while the one before it is under way is taken by the watch into the
// session's buffer, and answered after the first, which is answered first.
TEST(SessionTest, a_request_pipelined_while_work_is_under_way_waits_its_turn) {
  rig r(/*inline_run=*/false);
  r.client.write_some(asio::buffer(healthz));
  EXPECT_EQ(r.received(), "");
  ASSERT_EQ(r.policy->held.size(), 1u);
  r.client.write_some(asio::buffer(healthz));
  EXPECT_EQ(r.received(), "");                   // the second waits behind the first
  EXPECT_LT(r.handlers_run, rig::max_handlers);  // in the session's buffer, not spinning
  EXPECT_EQ(r.policy->held.size(), 1u);
  r.policy->held[0]->run();
  std::string first = r.received();
  EXPECT_EQ(answers_in(first), 1) << first;
  ASSERT_EQ(r.policy->held.size(), 2u);  // the second, read from the buffer, is submitted now
  r.policy->held[1]->run();
  EXPECT_EQ(answers_in(r.received()), 1);
  EXPECT_TRUE(r.policy->gone.empty());
  EXPECT_EQ(r.counted(200), 2);
}

// A client that closes while its work is under way: the policy is told (and stops it), the
// request counts as 499 and a client disconnect, nothing is written, and the session ends.
TEST(SessionTest, a_client_leaving_mid_work_is_told_to_the_policy_and_counted_499) {
  rig r(/*inline_run=*/false);
  r.client.write_some(asio::buffer(healthz));
  r.received();
  ASSERT_EQ(r.policy->held.size(), 1u);
  r.client.close();
  r.received();
  ASSERT_EQ(r.policy->gone.size(), 1u);
  EXPECT_EQ(r.policy->gone[0], r.policy->held[0]);
  r.policy->held[0]->run();  // stopped: it ends without running its body
  r.received();
  EXPECT_EQ(r.counted(499), 1);
  EXPECT_EQ(r.stats.for_mode(mode_kind::bounded).client_disconnects->Value(), 1);
  EXPECT_EQ(r.counted(200), 0);
  r.policy->held.clear();
  r.policy->gone.clear();
  EXPECT_TRUE(r.watched.expired());
  EXPECT_EQ(r.fe.open_connections.load(), 0);
  EXPECT_EQ(r.fe.in_flight.load(), 0);
}

// End of stream between requests is a normal close: no answer, nothing counted, the session
// is gone.
TEST(SessionTest, end_of_stream_between_requests_closes_quietly) {
  rig r(/*inline_run=*/true);
  r.client.write_some(asio::buffer(healthz));
  EXPECT_EQ(answers_in(r.received()), 1);
  r.client.close();
  r.received();
  EXPECT_TRUE(r.watched.expired());
  EXPECT_EQ(r.fe.open_connections.load(), 0);
  EXPECT_EQ(r.counted(200), 1);
  EXPECT_EQ(r.counted(499), 0);
}

// End of stream in the middle of a request: nobody to answer, nothing written or counted.
TEST(SessionTest, end_of_stream_mid_request_ends_the_session_unanswered) {
  rig r(/*inline_run=*/true);
  r.client.write_some(asio::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHo")));
  EXPECT_EQ(r.received(), "");
  r.client.close();
  EXPECT_EQ(r.received(), "");
  EXPECT_TRUE(r.watched.expired());
  EXPECT_EQ(r.fe.open_connections.load(), 0);
  EXPECT_EQ(r.fe.in_flight.load(), 0);
}

// A failure at the Nth operation, for every N until the exchange gets through: the session
// always ends, holds nothing, and leaves the counts at zero; an answer it could not write
// counts as 499. The last run, with no failure left, answers both requests.
TEST(SessionTest, a_failure_at_any_operation_ends_the_session_cleanly) {
  bool got_through = false;
  for (std::size_t n = 0; n < 20 && !got_through; ++n) {
    test::fail_count fc(n);
    rig r(/*inline_run=*/false, &fc);
    error_code gone;
    r.client.write_some(asio::buffer(healthz), gone);
    r.received();
    int answered = 0;
    for (int turn = 0; turn < 2 && !r.policy->held.empty(); ++turn) {
      auto t = std::move(r.policy->held.front());
      r.policy->held.erase(r.policy->held.begin());
      t->run();
      t.reset();
      answered += answers_in(r.received());
      if (turn == 0) {
        error_code gone;  // the session may have closed already
        r.client.write_some(asio::buffer(healthz), gone);
        r.received();
      }
    }
    got_through = answered == 2;
    r.client.close();
    r.received();
    r.policy->held.clear();
    r.policy->gone.clear();
    SCOPED_TRACE("failure at operation " + std::to_string(n));
    EXPECT_TRUE(r.watched.expired());
    EXPECT_EQ(r.fe.open_connections.load(), 0);
    EXPECT_EQ(r.fe.in_flight.load(), 0);
    EXPECT_EQ(r.counted(200), answered);
  }
  EXPECT_TRUE(got_through);
}

}  // namespace
}  // namespace stampede
