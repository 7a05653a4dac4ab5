#pragma once
/// \file A TCP connection as the sessions use it: Beast's deadline stream for waits, plus the
/// socket operations that a deadline stream does not have (a non-blocking read and write, a
/// peek that watches for the client leaving, a half-close).

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstddef>
#include <utility>

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
