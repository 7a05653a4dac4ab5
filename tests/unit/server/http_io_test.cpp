#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "loopback.hpp"
#include "server/connection.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::loopback;
using clock_type = std::chrono::steady_clock;

const read_limits limits{2s, 300ms, 8192, 1 << 20, 2048};

/// Reads one request from the server's end, on the loopback's io_context.
read_status read_one(loopback& l, boost::beast::flat_buffer& buffer, http_request& req,
                     const read_limits& lim = limits) {
  return l.run([&]() -> boost::asio::awaitable<read_status> {
    clock_type::time_point started;
    co_return co_await read_request(l.server, buffer, req, lim, started);
  }());
}

TEST(HttpIoTest, reads_a_request_and_keeps_the_next_one_pipelined_behind_it) {
  loopback l;
  l.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  boost::beast::flat_buffer buffer;
  http_request req;
  ASSERT_EQ(read_one(l, buffer, req), read_status::ok);
  EXPECT_EQ(req.target(), "/a");
  EXPECT_GT(buffer.size(), 0u) << "the next request's bytes stay in the buffer";
  ASSERT_EQ(read_one(l, buffer, req), read_status::ok);
  EXPECT_EQ(req.target(), "/b");
}

TEST(HttpIoTest, a_request_that_trickles_in_within_the_header_deadline_is_read) {
  loopback l;
  std::jthread slow([&] {
    for (const char* part : {"GET /slow HT", "TP/1.1\r\nHo", "st: x\r\n\r\n"}) {
      l.send(part);
      std::this_thread::sleep_for(30ms);
    }
  });
  boost::beast::flat_buffer buffer;
  http_request req;
  ASSERT_EQ(read_one(l, buffer, req), read_status::ok);
  EXPECT_EQ(req.target(), "/slow");
}

TEST(HttpIoTest, a_request_unfinished_at_the_header_deadline_times_out_and_can_be_answered) {
  loopback l;
  l.send("GET /never HTTP/1.1\r\nHost: x\r\n");  // the blank line never comes
  boost::beast::flat_buffer buffer;
  http_request req;
  const auto t0 = clock_type::now();
  ASSERT_EQ(read_one(l, buffer, req), read_status::timeout);
  const auto took = clock_type::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s) << "the header deadline (300 ms), not the idle one";
  // The socket is still writable: the 408 reaches the client, then the connection closes.
  l.run(reject_and_close(l.server, error_response(408, "too slow", "request_timeout", "test"), 1s));
  const auto got = l.receive_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
}

TEST(HttpIoTest, a_connection_idle_past_its_idle_timeout_is_closed_quietly) {
  loopback l;
  boost::beast::flat_buffer buffer;
  http_request req;
  const read_limits quick{100ms, 300ms, 8192, 1 << 20, 2048};
  EXPECT_EQ(read_one(l, buffer, req, quick), read_status::closed);
}

/// What reading `bytes` as a request says.
read_status status_of(const std::string& bytes) {
  loopback l;
  l.send(bytes);
  boost::beast::flat_buffer buffer;
  http_request req;
  return read_one(l, buffer, req);
}

TEST(HttpIoTest, oversized_parts_get_their_own_status) {
  EXPECT_EQ(status_of("GET /x HTTP/1.1\r\nHost: x\r\nBig: " + std::string(9000, 'a') + "\r\n\r\n"),
            read_status::too_large_header);
  EXPECT_EQ(status_of("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"),
            read_status::too_large_body);
  EXPECT_EQ(status_of("GET /" + std::string(3000, 't') + " HTTP/1.1\r\nHost: x\r\n\r\n"),
            read_status::too_long_target);
  EXPECT_EQ(status_of("NOT HTTP AT ALL\r\n\r\n"), read_status::bad_request);
}

TEST(HttpIoTest, a_response_says_its_length_and_a_head_answer_has_no_body) {
  response r;
  r.status = 200;
  r.body = "{\"ok\":true}";
  r.headers.emplace_back("Retry-After", "1");
  auto get = make_response(r, 11, true, false);
  EXPECT_EQ(get.body(), r.body);
  EXPECT_EQ(get[boost::beast::http::field::content_length], "11");
  EXPECT_EQ(get["Retry-After"], "1");
  EXPECT_TRUE(get.keep_alive());
  auto head = make_response(r, 11, false, true);
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(head[boost::beast::http::field::content_length], "11") << "the GET body's length";
  EXPECT_FALSE(head.keep_alive());
}

TEST(HttpIoTest, only_short_safe_request_ids_are_echoed) {
  EXPECT_TRUE(is_request_id("abc-123_x.y"));
  EXPECT_FALSE(is_request_id(""));
  EXPECT_FALSE(is_request_id(std::string(65, 'a')));
  EXPECT_FALSE(is_request_id("a\r\nSet-Cookie: x"));
  EXPECT_FALSE(is_request_id("a b"));
}

TEST(HttpIoTest, a_lingering_close_lets_the_answer_arrive_although_the_client_sends_more) {
  loopback l;
  l.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  // The client goes on sending a body the server will not read; a plain close with unread
  // input would reset the connection, and the answer with it.
  std::jthread more([&] {
    boost::system::error_code ec;
    const std::string chunk(10000, 'b');
    for (int i = 0; i < 10 && !ec; ++i)
      boost::asio::write(l.client, boost::asio::buffer(chunk), ec);
  });
  l.run(reject_and_close(l.server, error_response(413, "too large", "too_large", "test"), 1s));
  more.join();
  const auto got = l.receive_all();
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
  EXPECT_NE(got.find("too_large"), std::string::npos) << got;
}

}  // namespace
}  // namespace stampede
