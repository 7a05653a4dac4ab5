#pragma once
/// \file A TCP connection as the sessions use it: Beast's deadline stream for waits, plus the
/// socket operations that a deadline stream does not have (a non-blocking read and write, a
/// peek that watches for the client leaving, a half-close); and HTTP/1.1 read and written over
/// any such connection with a deadline.

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>
#include <variant>

#include "handlers/work.hpp"
#include "server/request_checks.hpp"

namespace stampede {

/// \brief One accepted TCP connection. The session is written against this interface (a
/// template parameter), so a unit test can put beast::test::stream in its place.
/// Thread-safety: one connection is used on its executor only.
class tcp_connection {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  /// Sets TCP_NODELAY and makes the socket non-blocking (answers are first written
  /// synchronously: see write_some).
  explicit tcp_connection(boost::asio::ip::tcp::socket socket);

  executor_type get_executor() noexcept { return stream_.get_executor(); }

  /// One deadline for the next operations, as in Beast's examples: set before each read or
  /// write; one that passes while nothing is pending times the next operation out at once.
  void expires_after(std::chrono::steady_clock::duration d) { stream_.expires_after(d); }
  void expires_never() { stream_.expires_never(); }

  /// A read within the deadline (end of stream, a reset or the deadline end it with an error).
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    return stream_.async_read_some(b, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    return stream_.async_write_some(b, std::forward<Token>(token));
  }
  /// A write now, on the non-blocking socket: would_block once the socket's buffer is full.
  template <class Buffers>
  std::size_t write_some(const Buffers& b, boost::system::error_code& ec) {
    return stream_.socket().write_some(b, ec);
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& b) {
    return stream_.socket().write_some(b);
  }

  /// Whatever has already arrived, up to `room`, without waiting (0 if nothing has).
  std::size_t read_now(boost::asio::mutable_buffer room);
  /// Bytes that have arrived and not been read.
  std::size_t available();
  /// Waits until the connection is readable without taking anything from it: `handler(ec)`
  /// with an error once the client has closed or reset it. A one-byte peek, not a readiness
  /// wait: asio starts a readiness wait by re-arming the socket's epoll entry (a system call
  /// per request), while a receive on a socket its last read left empty is only queued.
  template <class Handler>
  void async_watch(Handler&& handler) {
    stream_.socket().async_receive(
        boost::asio::buffer(&peeked_, 1), boost::asio::ip::tcp::socket::message_peek,
        [h = std::forward<Handler>(handler)](boost::system::error_code ec, std::size_t) mutable {
          h(ec);
        });
  }
  /// Whether the client has closed or reset the connection, looked at without waiting or
  /// taking anything (a recv(MSG_PEEK)).
  bool peer_gone();

  /// Cancels what is pending (a read, a watch); they complete with operation_aborted.
  void cancel() {
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
  }
  /// No more output: the peer reads end of stream once it has read what was sent.
  void shutdown_send();
  void close();

 private:
  boost::beast::tcp_stream stream_;
  char peeked_ = 0;  ///< a watch's peek lands here
};

}  // namespace stampede

// Reading and writing HTTP/1.1 with a timeout on every operation, shared by the main
// port's session and the admin port.

namespace stampede {

using http_response = boost::beast::http::response<boost::beast::http::string_body>;

/// Limits for reading one request.
struct read_limits {
  std::chrono::milliseconds idle;    ///< wait for the first byte of a request
  std::chrono::milliseconds header;  ///< first byte to complete request
  std::uint32_t max_header_bytes;
  std::uint64_t max_body_bytes;
  std::size_t max_target_bytes;
};

/// Builds the HTTP response for `res` answering `req` (version, keep-alive, HEAD).
http_response make_response(response res, unsigned version, bool keep_alive, bool head_request);

/// A request id worth echoing: short, and only characters safe in a header.
bool is_request_id(std::string_view id);

// The functions below take any connection with tcp_connection's interface.

/// The rest of a request whose first bytes did not complete it: reads on within the header
/// deadline (`started` + limits.header; the 408 it ends in leaves the socket writable),
/// feeding `reader`. `req` is set on ok.
template <class Connection>
boost::asio::awaitable<read_status> read_rest_of_request(
    Connection& conn, boost::beast::flat_buffer& buffer, request_reader& reader, http_request& req,
    const read_limits& limits, std::chrono::steady_clock::time_point started) {
  using namespace boost::asio::experimental::awaitable_operators;
  constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
  // A request that trickles in. Its deadline must leave the socket open, to answer 408 (the
  // stream's deadline would close it), so these reads race a timer of their own; each is a
  // single socket operation, whose cancellation cannot be lost between inner reads as in
  // Beast's composed http::async_read.
  conn.expires_never();
  boost::asio::steady_timer timer(conn.get_executor(), started + limits.header);
  for (;;) {
    auto more =
        co_await (conn.async_read_some(buffer.prepare(4096), nothrow) || timer.async_wait(nothrow));
    if (more.index() == 1) co_return read_status::timeout;
    auto [ec, n] = std::get<0>(more);
    if (ec || n == 0) co_return read_status::closed;  // gone mid-request: nobody to answer
    buffer.commit(n);
    if (auto done = reader.feed(buffer)) {
      if (*done == read_status::ok) req = reader.release();
      co_return *done;
    }
  }
}

/// Reads one request into `req`, keeping any bytes past it (a pipelined next request) in
/// `buffer`. `started` is set when its first byte is in hand.
template <class Connection>
boost::asio::awaitable<read_status> read_request(Connection& conn,
                                                 boost::beast::flat_buffer& buffer,
                                                 http_request& req, const read_limits& limits,
                                                 std::chrono::steady_clock::time_point& started) {
  constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
  if (buffer.size() == 0) {
    // Between requests: wait for the first byte within the idle timeout.
    conn.expires_after(limits.idle);
    auto [ec, n] = co_await conn.async_read_some(buffer.prepare(4096), nothrow);
    if (ec || n == 0) co_return read_status::closed;  // idle too long, closed or reset
    buffer.commit(n);
  }
  started = std::chrono::steady_clock::now();
  request_reader reader(limits.max_header_bytes, limits.max_body_bytes, limits.max_target_bytes);
  if (auto done = reader.feed(buffer)) {  // the usual case: it came in one read
    if (*done == read_status::ok) req = reader.release();
    co_return *done;
  }
  co_return co_await read_rest_of_request(conn, buffer, reader, req, limits, started);
}

/// Writes `res` within `timeout`; false if it failed or timed out.
template <class Connection>
boost::asio::awaitable<bool> write_response(Connection& conn, http_response& res,
                                            std::chrono::milliseconds timeout) {
  // Written straight from the prepared message: no copy of it into a string first.
  conn.expires_after(timeout);
  auto [ec, n] = co_await boost::beast::http::async_write(
      conn, res, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return !ec;
}

/// Half-closes, discards what the peer still sends for a short while, then closes: a close
/// with unread input would reset the connection and could destroy the answer in flight.
template <class Connection>
boost::asio::awaitable<void> lingering_close(Connection& conn) {
  conn.shutdown_send();
  conn.expires_after(std::chrono::milliseconds(500));
  std::array<char, 4096> sink;
  std::size_t drained = 0;
  while (drained < 256 * 1024) {
    auto [ec, n] = co_await conn.async_read_some(boost::asio::buffer(sink),
                                                 boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) break;  // the peer closed too, or the 500 ms are up
    drained += n;
  }
  conn.close();
}

/// Writes `answer` (an error_response), then closes the connection gracefully.
template <class Connection>
boost::asio::awaitable<void> reject_and_close(Connection& conn, response answer,
                                              std::chrono::milliseconds write_timeout) {
  auto out = make_response(std::move(answer), 11, false, false);
  co_await write_response(conn, out, write_timeout);
  co_await lingering_close(conn);
}

}  // namespace stampede
