#include "server/front_end.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/v6_only.hpp>

#include "server_rig.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::serving;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

TEST(ListenerTest, serves_on_the_port_that_port_0_became) {
  serving s;
  EXPECT_EQ(s.main.address().rfind("127.0.0.1:", 0), 0u) << s.main.address();
  EXPECT_GT(s.port(), 0);
  auto c = s.connect();
  const auto got = serving::get(c, "/healthz");
  EXPECT_TRUE(starts_with(got, "HTTP/1.1 200")) << got;
}

TEST(ListenerTest, past_max_connections_a_connection_is_closed_at_once_and_counted) {
  config cfg;
  cfg.http.max_connections = 1;
  serving s(cfg);
  auto first = s.connect();
  // The first is open (its session waits for a request); the second is over the limit.
  for (int i = 0; i < 1000 && s.fe.open_connections.load() < 1; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  auto second = s.connect();
  EXPECT_EQ(serving::read_all(second), "") << "closed without an answer";
  EXPECT_EQ(s.stats.connections_refused().Value(), 1);
  EXPECT_TRUE(starts_with(serving::get(first, "/healthz"), "HTTP/1.1 200"));
}

TEST(ListenerTest, at_shutdown_the_backlog_is_answered_not_reset_and_then_the_port_closes) {
  serving s(config{}, false);  // no accept loop: connections wait in the backlog
  auto waiting = s.connect();
  boost::asio::write(
      waiting, boost::asio::buffer(
                   std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  const auto port = s.port();
  s.fe.draining.store(true);
  s.main.close_for_shutdown();
  for (int i = 0; i < 1000 && !s.main.closed(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(s.main.closed());
  const auto got = serving::read_all(waiting);
  EXPECT_TRUE(starts_with(got, "HTTP/1.1 ")) << "answered, not reset: " << got;
  boost::asio::ip::tcp::socket late(s.client_io);
  boost::system::error_code ec;
  late.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_EQ(ec, boost::asio::error::connection_refused);
}

TEST(ListenerTest, an_ipv6_address_is_bracketed_and_bound_v6_only) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io);
  try {
    open_acceptor(a, {"::1", 0}, 16);
  } catch (const boost::system::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  EXPECT_EQ(bound_address(a).rfind("[::1]:", 0), 0u) << bound_address(a);
  boost::asio::ip::v6_only only;
  a.get_option(only);
  EXPECT_TRUE(only.value());
}

TEST(ListenerTest, an_address_in_use_is_an_error_not_a_silent_second_listener) {
  serving s;
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io);
  EXPECT_THROW(open_acceptor(a, {"127.0.0.1", s.port()}, 16), boost::system::system_error);
}

}  // namespace
}  // namespace stampede
