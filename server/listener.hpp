#pragma once
/// \file The main port's listener: accepts connections and starts a session for each.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <string>

#include "config/config.hpp"
#include "server/front_end.hpp"

namespace stampede {

/// Opens `a` on `e` (IPv6 only on an IPv6 address) and listens.
void open_acceptor(boost::asio::ip::tcp::acceptor& a, const endpoint& e, int backlog);
/// `a`'s address as "IP:PORT" ("[IP]:PORT" for IPv6): what a port 0 became.
std::string bound_address(const boost::asio::ip::tcp::acceptor& a);

/// \brief Accepts main-port connections and starts a session for each on its executor, or
/// closes it at once past http.max_connections. Thread-safety: start and close_for_shutdown
/// from any thread (both run on the listener's strand).
class listener {
 public:
  /// `io_threads`: the threads that run `io` (with several, each session gets a strand).
  listener(boost::asio::io_context& io, int io_threads, front_end& fe);

  /// Binds and listens; throws boost::system::system_error if it cannot. The acceptor is
  /// non-blocking: the accept loop and shutdown take the backlog with accepts that stop when
  /// it is empty (a shutdown before the loop has run would otherwise wait for a connection).
  void open(const endpoint& e, int backlog) {
    open_acceptor(acceptor_, e, backlog);
    acceptor_.non_blocking(true);
  }
  std::string address() const { return bound_address(acceptor_); }
  /// Starts the accept loop.
  void start();
  /// Shutdown: takes the connections already in the backlog (answered, not reset by the
  /// kernel when the listener closes), then closes the listener.
  void close_for_shutdown();
  /// Whether close_for_shutdown has taken the backlog and closed the listener.
  bool closed() const { return closed_.load(); }

 private:
  boost::asio::any_io_executor session_executor();
  void admit(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& io_;
  const int io_threads_;
  front_end& fe_;
  /// The acceptor is used by the accept loop and by shutdown; with several I/O threads they
  /// would race, so both run on this strand.
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> closed_{false};
};

}  // namespace stampede
