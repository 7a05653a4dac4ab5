#pragma once
/// \file Hands one request's work to a policy and waits for it to end while watching the
/// connection for the client leaving: the front end's whole view of a mode.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "server/execution_policy.hpp"

namespace stampede {

/// What the front end learns about one request's work once it has ended.
struct work_outcome {
  std::shared_ptr<const task> t;              ///< rejection, times (its answer is in result)
  std::optional<steady::time_point> gone_at;  ///< when the client left, if it did
  response result;                            ///< the body's answer, moved out of the task
};

/// The connection the work is for.
struct watched_connection {
  boost::asio::ip::tcp::socket& socket;
  boost::beast::flat_buffer& buffer;  ///< bytes sent meanwhile (a pipelined request) go here
  std::size_t max_buffered;           ///< past this, the connection is no longer read
};

/// \brief Who waits for a request's work: called once, on the executor given to start_task.
class work_waiter {
 public:
  virtual void work_done(work_outcome done) = 0;

 protected:
  ~work_waiter() = default;
};

/// \brief The way back to a single I/O thread for answers of admitted work, ahead of its queue.
/// A finished task used to be posted to the I/O context, behind every ready event: under a
/// closed-loop storm of 503s that is hundreds of connections, and tens of milliseconds before
/// an admitted answer was written. Here the thread that finishes a task lists it; the I/O thread
/// takes the list before each request it reads (drain()), and a post wakes it when it is idle.
/// Rejections do not come this way: they wait several turns of the queue, behind the admitted
/// answers and the requests waiting to be read (run_task.cpp, rejection_turns).
/// Only for an I/O context run by one thread, so a drain is always on every connection's
/// executor. Thread-safety: push from any thread; drain on the I/O thread only.
class completion_lane {
 public:
  /// One listed completion: run() finishes it on the I/O thread.
  class item {
   public:
    virtual void run() = 0;

   protected:
    ~item() = default;
  };

  explicit completion_lane(boost::asio::any_io_executor io) : io_(std::move(io)) {}
  completion_lane(const completion_lane&) = delete;
  completion_lane& operator=(const completion_lane&) = delete;

  void push(item* done);
  /// Finishes everything listed, oldest first; cheap (one load) when nothing is.
  void drain() {
    if (listed_.load(std::memory_order_acquire)) drain_listed();
  }

 private:
  void drain_listed();

  boost::asio::any_io_executor io_;
  std::mutex mutex_;
  std::vector<item*> items_;   ///< under mutex_
  std::vector<item*> taking_;  ///< I/O thread only: the batch being finished
  std::atomic<bool> listed_{false};
  bool draining_ = false;  ///< I/O thread only: a drain inside a drain waits for the outer one
};

/// Makes `body` a task of `p`'s mode, submits it to `p`, and calls `waiter->work_done` on
/// `ex` (never inline) once the task has ended. Meanwhile the socket is watched (a readiness
/// wait, no buffer held): if the client closes or resets, `p.client_gone` is called at once.
/// A mode that asks (checks_gone_before_submit) never gets work whose client had already
/// left; a mode that runs work inline is not watched (the socket is looked at afterwards). The task
/// and its completion are one allocation. `p` and the connection must outlive the operation (the
/// waiter is held). With a `lane` (one I/O thread), admitted work comes back through it.
void start_task(execution_policy& p, task::body_fn body, mode_metrics& m, downstream* dependency,
                watched_connection conn, std::shared_ptr<work_waiter> waiter,
                const boost::asio::any_io_executor& ex, completion_lane* lane = nullptr);

/// True if the peer has closed or reset the connection (checked without blocking or
/// consuming anything).
bool peer_gone(boost::asio::ip::tcp::socket& socket);

}  // namespace stampede
