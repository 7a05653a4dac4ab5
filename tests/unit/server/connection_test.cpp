#include "server/connection.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <thread>

#include "loopback.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::loopback;

/// Waits (briefly) until `n` bytes have arrived at the server's end.
void arrive(tcp_connection& c, std::size_t n) {
  for (int i = 0; i < 1000 && c.available() < n; ++i) std::this_thread::sleep_for(1ms);
}

TEST(ConnectionTest, read_now_takes_what_has_arrived_and_never_waits) {
  loopback l;
  char room[16];
  EXPECT_EQ(l.server.read_now(boost::asio::buffer(room)), 0u) << "nothing yet: no wait";
  l.send("hello");
  arrive(l.server, 5);
  EXPECT_EQ(l.server.available(), 5u);
  EXPECT_EQ(l.server.read_now(boost::asio::buffer(room, 3)), 3u) << "no more than the room";
  EXPECT_EQ(std::string(room, 3), "hel");
  EXPECT_EQ(l.server.read_now(boost::asio::buffer(room)), 2u);
  EXPECT_EQ(l.server.available(), 0u);
}

TEST(ConnectionTest, peer_gone_sees_a_close_but_not_unread_bytes) {
  loopback l;
  EXPECT_FALSE(l.server.peer_gone());
  l.send("x");
  arrive(l.server, 1);
  EXPECT_FALSE(l.server.peer_gone()) << "a byte to read is not a departure";
  EXPECT_EQ(l.server.available(), 1u) << "and the look took nothing";
  char c;
  l.server.read_now(boost::asio::buffer(&c, 1));
  l.client.close();
  for (int i = 0; i < 1000 && !l.server.peer_gone(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(l.server.peer_gone());
}

TEST(ConnectionTest, a_watch_ends_with_an_error_when_the_client_leaves_and_takes_no_byte) {
  loopback l;
  boost::system::error_code seen = boost::asio::error::would_block;
  l.server.async_watch([&](boost::system::error_code ec) { seen = ec; });
  l.send("y");
  l.io.run_for(2s);
  EXPECT_FALSE(seen) << "readable: the watch ends without error";
  EXPECT_EQ(l.server.available(), 1u) << "the byte is still there to read";
  char c;
  l.server.read_now(boost::asio::buffer(&c, 1));
  seen = boost::asio::error::would_block;
  l.server.async_watch([&](boost::system::error_code ec) { seen = ec; });
  l.client.close();
  l.io.restart();
  l.io.run_for(2s);
  EXPECT_TRUE(seen) << "closed: the watch ends with an error";
  EXPECT_NE(seen, boost::asio::error::would_block) << "it ended";
}

TEST(ConnectionTest, a_watch_can_be_cancelled) {
  loopback l;
  boost::system::error_code seen;
  bool called = false;
  l.server.async_watch([&](boost::system::error_code ec) {
    seen = ec;
    called = true;
  });
  boost::asio::post(l.io, [&] { l.server.cancel(); });
  l.io.run_for(2s);
  EXPECT_TRUE(called);
  EXPECT_EQ(seen, boost::asio::error::operation_aborted);
}

TEST(ConnectionTest, shutdown_send_gives_the_client_end_of_stream_after_what_was_sent) {
  loopback l;
  l.server.write_some(boost::asio::buffer(std::string("bye")));
  l.server.shutdown_send();
  EXPECT_EQ(l.receive_all(), "bye") << "then end of stream";
}

TEST(ConnectionTest, write_some_does_not_block_once_the_socket_is_full) {
  loopback l;
  int small = 4096;
  ::setsockopt(l.client.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const std::string chunk(64 * 1024, 'z');
  boost::system::error_code ec;
  std::size_t total = 0;
  // The client reads nothing: the buffers fill, and a write then says so instead of waiting.
  for (int i = 0; i < 1000 && !ec; ++i)
    total += l.server.write_some(boost::asio::buffer(chunk), ec);
  EXPECT_EQ(ec, boost::asio::error::would_block);
  EXPECT_GT(total, 0u);
  EXPECT_LT(total, 1000 * chunk.size());
}

}  // namespace
}  // namespace stampede
