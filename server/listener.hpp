#pragma once
/// \file The main port's listener: accepts connections and starts a session for each.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "server/completion_lane.hpp"
#include "server/front_end.hpp"

namespace stampede {

/// Opens `a` on `e` (IPv6 only on an IPv6 address) and listens.
void open_acceptor(boost::asio::ip::tcp::acceptor& a, const endpoint& e, int backlog);
/// `a`'s address as "IP:PORT" ("[IP]:PORT" for IPv6): what a port 0 became.
std::string bound_address(const boost::asio::ip::tcp::acceptor& a);

/// One I/O thread as the main port sees it: the context that thread alone runs, and the way
/// finished work gets back to it.
struct io_thread {
  boost::asio::io_context& io;
  completion_lane& lane;
};

/// \brief Accepts main-port connections and starts a session for each, on the I/O threads in
/// turn, or closes it at once past http.max_connections. A connection stays on its thread:
/// its session needs no strand, and nothing of a request crosses between I/O threads (an
/// io_context per thread, as the strongest simple Beast servers run). Thread-safety: start and
/// close_for_shutdown from any thread (both run on the acceptor's context).
class listener {
 public:
  /// `accept_io`: where the acceptor runs; `threads`: at least one.
  listener(boost::asio::io_context& accept_io, std::vector<io_thread> threads, front_end& fe);

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
  /// The thread the next connection goes to (in turn: admit moves the turn on).
  io_thread& pick();
  void admit(boost::asio::ip::tcp::socket socket, io_thread& on);
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& accept_io_;
  std::vector<io_thread> threads_;
  std::size_t next_ = 0;  ///< the first thread's
  front_end& fe_;
  /// Used by the accept loop and by shutdown, both on accept_io_, which one thread runs: they
  /// never race.
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> closed_{false};
};

}  // namespace stampede
