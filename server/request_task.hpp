#pragma once
/// \file One request's work as the front end hands it to a mode: a task that is also its own
/// completion, and comes back to its connection's I/O thread when it has ended; and that
/// connection as the work sees it (work_waiter); and the completion lane the finished tasks
/// come back by.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "server/execution_policy.hpp"

// How a finished task's answer gets back to its connection's I/O thread: admitted work
// ahead of the I/O thread's queue, a rejection behind it.

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

namespace stampede {

/// What the connection learns once its request's work has ended.
struct work_outcome {
  std::shared_ptr<const task> t;  ///< times, for the wasted-work count
  response answer;                ///< the body's answer, or the rejection's 503
};

/// \brief The connection a request's work is for, as the work sees it. Every call is on the
/// connection's executor.
class work_waiter {
 public:
  /// The work is under way elsewhere: watch for the client leaving until work_done.
  virtual void work_under_way() = 0;
  /// A policy that cannot watch asks whether the client has already gone (task::
  /// client_already_gone); if so the connection counts it gone since `since`.
  virtual bool client_already_gone(steady::time_point since) = 0;
  /// The work has ended: called once.
  virtual void work_done(work_outcome done) = 0;

 protected:
  ~work_waiter() = default;
};

/// \brief A task whose completion is the way back to its connection (one allocation for both).
/// Everything but completed() runs on the connection's executor.
class request_task final : public task, public completion_lane::item {
 public:
  request_task(task::body_fn body, mode_kind mode, mode_metrics& m, downstream* dependency,
               execution_policy& p, std::shared_ptr<work_waiter> waiter,
               const boost::asio::any_io_executor& ex, completion_lane& lane);

  /// Hands the task to the policy; `self` is this task, held until it has ended. Work that
  /// ends inside submit (run inline) is answered at once, without a round trip through the
  /// executor's queue; work under way elsewhere is watched (work_waiter::work_under_way); a
  /// rejection's answer comes back through the lane.
  void begin(std::shared_ptr<request_task> self);

  // completion_lane::item: finishes the task on the connection's executor.
  void run() override { finish(); }
  const boost::asio::any_io_executor& executor() const override { return executor_; }

 protected:
  bool client_already_gone(steady::time_point since) override {
    return waiter_->client_already_gone(since);
  }
  void completed() override;

 private:
  enum phase { idle, submitting, submitted, ended_in_submit, rejected_in_submit };
  void finish();

  execution_policy& policy_;
  std::shared_ptr<work_waiter> waiter_;
  boost::asio::any_io_executor executor_;
  completion_lane& lane_;
  std::shared_ptr<request_task> self_;  ///< held while the work is under way
  std::atomic<int> phase_{idle};        ///< completed() and begin() agree on who finishes
};

}  // namespace stampede
