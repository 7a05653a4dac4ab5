#pragma once
/// \file How a finished task's answer gets back to its connection's I/O thread: admitted work
/// ahead of the I/O thread's queue, a rejection behind it.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <mutex>
#include <vector>

namespace stampede {

/// \brief The way back to one I/O thread for finished work (each I/O thread has its own
/// context, run by it alone, and its own lane).
/// Admitted work: a finished task posted to the I/O context would wait behind every ready
/// event (under a closed-loop storm of 503s, hundreds of connections: tens of milliseconds
/// before an admitted answer is written). The thread that finishes a task lists it here; the
/// I/O thread takes the list before each request it reads (drain()), and one post per batch
/// wakes it when it is idle.
/// Rejections wait several turns of their connection's queue instead (rejected()): under a
/// storm of 503s, the sooner a refused client's connection comes round again, the later the
/// requests that will be admitted are read.
/// Thread-safety: admitted and rejected from any thread; drain on the I/O thread only.
class completion_lane {
 public:
  /// One finished task: run() finishes it on its connection's executor.
  class item {
   public:
    virtual void run() = 0;
    virtual const boost::asio::any_io_executor& executor() const = 0;

   protected:
    ~item() = default;
  };

  /// `io`: the I/O thread's context (run by that thread alone), every connection's executor.
  explicit completion_lane(boost::asio::any_io_executor io) : io_(std::move(io)) {}
  completion_lane(const completion_lane&) = delete;
  completion_lane& operator=(const completion_lane&) = delete;

  /// Admitted work has ended: finished ahead of the I/O thread's queue where it can be.
  void admitted(item* done);
  /// A rejection: finished after `rejection_turns` turns of its executor's queue, behind the
  /// admitted answers and the requests already waiting to be read.
  void rejected(item* done);
  /// Finishes everything listed, oldest first; cheap (one load) when nothing is.
  void drain() {
    if (listed_.load(std::memory_order_acquire)) drain_listed();
  }

 private:
  void push(item* done);
  void drain_listed();
  void after_turns(item* done, int turns);

  boost::asio::any_io_executor io_;
  std::mutex mutex_;
  std::vector<item*> items_;   ///< under mutex_
  std::vector<item*> taking_;  ///< I/O thread only: the batch being finished
  std::atomic<bool> listed_{false};
  bool draining_ = false;  ///< I/O thread only: a drain inside a drain waits for the outer one
};

}  // namespace stampede
