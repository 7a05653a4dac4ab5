#pragma once
/// \file What every main-port connection shares, owned by the server: the live config and
/// policy (each in a shared_slot), the counts a connection holds up (scoped_count), and the
/// list of open connections shutdown drains (connection_list); and the main port's listener,
/// which accepts connections and starts a session for each.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "handlers/labs/labs.hpp"
#include "server/execution_policy.hpp"
#include "server/front_end.hpp"
#include "server/metrics.hpp"
#include "server/request_task.hpp"

namespace stampede {

/// \brief A shared_ptr that one thread replaces while others copy it, under a mutex.
/// (libstdc++ 12's std::atomic<std::shared_ptr> unlocks a load with a relaxed store, so a load
/// does not happen-before the next store: ThreadSanitizer rightly reports the pointer's read and
/// write as a race.) Readers copy it only when `front_end::generation` has changed.
template <class T>
class shared_slot {
 public:
  explicit shared_slot(std::shared_ptr<T> p) : p_(std::move(p)) {}
  std::shared_ptr<T> load() const {
    std::lock_guard lock(mutex_);
    return p_;
  }
  void store(std::shared_ptr<T> p) {
    std::lock_guard lock(mutex_);
    p_.swap(p);  // the old one is released after the lock, in p's destructor
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<T> p_;
};

/// \brief Adds one to a count for its lifetime: the front end's open connections and
/// requests in flight, which the connection limit and shutdown read.
class scoped_count {
 public:
  explicit scoped_count(std::atomic<int>& c) : count_(c) { ++count_; }
  ~scoped_count() { --count_; }
  scoped_count(const scoped_count&) = delete;
  scoped_count& operator=(const scoped_count&) = delete;

 private:
  std::atomic<int>& count_;
};

/// \brief A main-port connection as shutdown sees it.
class drainable {
 public:
  /// Shutdown has begun: a connection waiting idle for its next request stops waiting and
  /// drains (503 if a request is already there, else a graceful close). Busy ones drain when
  /// their answer is written. Safe to call from any thread (it posts to the connection);
  /// `self` is this connection, handed to the posted work so that the connection's last
  /// reference is let go on its own executor, not on the caller's thread.
  virtual void wake_for_drain(std::shared_ptr<drainable> self) = 0;

 protected:
  ~drainable() = default;
};

/// \brief Every open main-port connection, so that shutdown can wake the idle ones and wait
/// until each has answered or closed (a request still unread when the process exits would be
/// reset by the kernel). A lock per connection opened and closed, none per request.
class connection_list {
 public:
  using handle = std::list<std::weak_ptr<drainable>>::iterator;
  handle add(std::weak_ptr<drainable> c) {
    std::lock_guard lock(mutex_);
    return all_.insert(all_.end(), std::move(c));
  }
  void remove(handle h) {
    std::lock_guard lock(mutex_);
    all_.erase(h);
  }
  /// Calls wake_for_drain on every connection still open.
  void wake_all() {
    std::vector<std::shared_ptr<drainable>> open;
    {
      std::lock_guard lock(mutex_);
      for (auto& w : all_) {
        if (auto c = w.lock()) open.push_back(std::move(c));
      }
    }
    for (auto& c : open) {
      drainable* d = c.get();
      d->wake_for_drain(std::move(c));
    }
  }

 private:
  std::mutex mutex_;
  std::list<std::weak_ptr<drainable>> all_;
};

/// \brief What every session shares, owned by the server. Thread-safety: all members are
/// safe to read from any I/O thread; the server swaps config and policy under their slots' locks.
struct front_end {
  metrics& stats;
  shared_slot<const config>& cfg;
  shared_slot<execution_policy>& policy;
  downstream& dependency;  ///< the simulated dependency every mode shares
  labs& lab;               ///< the failure labs' shared state
  /// Bumped after every swap of cfg or policy: a session keeps its own copies and reloads them
  /// only when this has changed, instead of taking both slots' locks per request.
  std::atomic<std::uint64_t> generation{0};
  std::atomic<bool> draining{false};     ///< shutdown: finish the current request, then close
  std::atomic<int> in_flight{0};         ///< requests read and not yet answered
  std::atomic<int> open_connections{0};  ///< main-port connections open now
  connection_list connections{};         ///< open connections, for shutdown
};

}  // namespace stampede

// The main port's listener: accepts connections and starts a session for each.

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
