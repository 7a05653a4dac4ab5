#include "server/shutdown.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <future>

#include "server_rig.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::serving;
using clock_type = std::chrono::steady_clock;

/// Runs the drain on an admin context of its own, as the server does; returns how long it took.
clock_type::duration drain(serving& s) {
  boost::asio::io_context admin;
  auto done =
      boost::asio::co_spawn(admin,
                            drain_for_shutdown(admin.get_executor(), s.fe, s.main,
                                               [&s] { return std::vector{s.policy.load()}; }),
                            boost::asio::use_future);
  const auto t0 = clock_type::now();
  admin.run_for(10s);
  EXPECT_EQ(done.wait_for(0s), std::future_status::ready) << "the drain ended by itself";
  return clock_type::now() - t0;
}

/// A client whose request for `target` is in flight.
boost::asio::ip::tcp::socket in_flight(serving& s, const std::string& target) {
  auto c = s.connect();
  boost::asio::write(c, boost::asio::buffer("GET " + target +
                                            " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  for (int i = 0; i < 2000 && s.fe.in_flight.load() < 1; ++i) std::this_thread::sleep_for(1ms);
  return c;
}

config with_drain(mode_kind mode, int drain_ms) {
  config c;
  c.mode = mode;
  c.shutdown.drain_timeout_ms = drain_ms;
  return c;
}

TEST(ShutdownTest, an_idle_server_stops_at_once_and_stops_listening) {
  serving s(with_drain(mode_kind::bounded, 5000));
  EXPECT_LT(drain(s), 1s) << "nothing to drain: not the 5 s drain timeout";
  EXPECT_TRUE(s.fe.draining.load());
  EXPECT_TRUE(s.main.closed());
}

TEST(ShutdownTest, work_that_outlives_the_drain_is_stopped_and_answered) {
  serving s(with_drain(mode_kind::coroutine, 200));
  auto c = in_flight(s, "/work/io?ms=20000");
  ASSERT_EQ(s.fe.in_flight.load(), 1);
  const auto took = drain(s);
  EXPECT_GE(took, 200ms) << "the drain waited for it first";
  EXPECT_LT(took, 3s) << "then stopped it: not its 20 s";
  EXPECT_EQ(s.fe.in_flight.load(), 0);
  const auto got = serving::read_all(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << "stopped with an answer: " << got;
}

TEST(ShutdownTest, work_that_ends_within_the_drain_is_answered_in_full) {
  serving s(with_drain(mode_kind::bounded, 5000));
  auto c = in_flight(s, "/work/io?ms=300");
  const auto took = drain(s);
  EXPECT_LT(took, 3s);
  const auto got = serving::read_all(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
}

}  // namespace
}  // namespace stampede
