#pragma once
/// \file bounded mode: a fixed pool of workers, a bounded queue (FIFO, or CoDel with adaptive
/// LIFO), fast 503s when full, and cancellation of queued and running work when the client
/// leaves.

#include <semaphore.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "server/execution_policy.hpp"
#include "server/modes/thread_waits.hpp"

namespace stampede {

/// \brief A worker pool of bounded.workers threads (created up front; more only if a reload
/// raises the count) fed by a FIFO queue of bounded.queue_capacity waiting tasks beyond the
/// free workers. A full queue answers 503 queue_full without touching a worker (within a few
/// turns of the connection's queue: completion_lane paces rejections); work
/// that waited past bounded.queue_timeout_ms is answered 503 queue_timeout by a supervisor
/// thread and never runs. With bounded.queue: codel, once the queue has not been empty for
/// bounded.codel_interval_ms (a standing queue) work waits at most bounded.codel_target_ms,
/// and the newest is served first (Facebook's "Fail at Scale": the oldest requests' clients
/// are the likeliest to have left). With bounded.cancel_on_disconnect, a departed client's queued
/// work is removed and its running work asked to stop. Fan-out runs at most bounded.fanout_limit
/// fetches at once, multiplexed on the worker itself, so it can never starve the pool.
/// Thread-safety: all public members may be called from any thread. The destructor stops and
/// joins the threads; queued work at that point is rejected (shutting_down).
class bounded_pool_policy final : public execution_policy {
 public:
  bounded_pool_policy(const config& c, metrics& m);
  ~bounded_pool_policy() override;
  void submit(std::shared_ptr<task> t) override;
  void client_gone(const std::shared_ptr<task>& t) override;
  void reconfigure(const config& c) override;
  void stop_all() override;

 private:
  struct entry {
    std::shared_ptr<task> work;
    steady::time_point deadline;  ///< queue timeout
  };
  void worker_loop();
  void supervisor_loop();
  void resize_locked(int workers);
  /// The settings a reload may change, but the pool size (resize_locked).
  void configure_locked(const config& c);
  void publish_depth_locked();
  /// When `e` is due to be answered queue_timeout: its deadline or, with codel, its target
  /// once the queue stands.
  steady::time_point expiry_locked(const entry& e) const;
  bool standing_locked(steady::time_point now) const;

  /// \brief A counting semaphore whose acquire sleeps at once when the count is 0: a POSIX
  /// semaphore (glibc: an atomic fast path, a futex wait, a wake only when someone sleeps).
  /// libstdc++ 12's std::counting_semaphore spins first, calling sched_yield: on a small
  /// machine each idle worker then took the CPU from the I/O thread several times a request.
  class work_signal {
   public:
    work_signal();
    ~work_signal();
    work_signal(const work_signal&) = delete;
    work_signal& operator=(const work_signal&) = delete;
    void acquire();
    void release(int n = 1);

   private:
    sem_t sem_;
  };

  // This mode's own metrics.
  prometheus::Gauge& depth_gauge_;     ///< stampede_queue_depth
  prometheus::Gauge& capacity_gauge_;  ///< stampede_queue_capacity
  prometheus::Gauge& workers_gauge_;   ///< stampede_pool_workers
  sharded_histogram& queue_wait_;      ///< stampede_queue_wait_seconds
  // This mode's reasons to turn a request away.
  const rejection& shutting_down_;
  /// Waited past bounded.queue_timeout_ms (or codel's target): a drop, for the adaptive limit.
  const rejection& timed_out_;
  /// Admission: a place per worker and per queue slot (bounded.workers + queue_capacity),
  /// taken by a request until it ends (503 queue_full past them), and the adaptive limit in
  /// front of it.
  limiter places_;
  std::mutex mutex_;         ///< guards everything below
  work_signal work_signal_;  ///< a release per task admitted (and per exit)
  std::condition_variable supervisor_cv_;
  std::deque<entry> queue_;
  std::vector<std::shared_ptr<task>> running_;
  std::vector<std::thread> threads_;
  int target_workers_ = 0;
  int live_workers_ = 0;
  int capacity_ = 0;
  std::chrono::milliseconds queue_timeout_{0};
  bool codel_ = false;
  std::chrono::milliseconds codel_target_{5};
  std::chrono::milliseconds codel_interval_{100};
  steady::time_point last_empty_ = steady::now();  ///< when the queue was last empty
  /// When the supervisor wakes next (unless notified): submit notifies it only for an earlier
  /// deadline.
  steady::time_point supervisor_wakes_at_ = steady::time_point::min();
  std::atomic<bool> cancel_on_disconnect_{true};  ///< also read without the lock
  std::atomic<int> retry_after_s_{1};  ///< bounded.retry_after_s, read by the supervisor too
  bool stopping_ = false;              ///< no more admissions (stop_all)
  bool exiting_ = false;               ///< threads should exit (destructor)
  thread_waits waits_;                 ///< a worker's; fan-out: bounded.fanout_limit at once
};

}  // namespace stampede
