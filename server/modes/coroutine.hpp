#pragma once
/// \file coroutine mode: one cheap task per request — the goroutine analogue. Unbounded by
/// default (the runaway of cheap tasks); coroutine.max_tasks is the semaphore every such
/// service should have had.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "server/execution_policy.hpp"

namespace stampede {

/// \brief Runs every admitted request's work as a job (a C++20 coroutine): its first run on the
/// I/O thread that read the request (as a goroutine starts on the processor that made it),
/// every run after a wait or a yield on one of coroutine.threads threads, each with an event
/// loop of its own (the task keeps to the one it was given). Waiting — for the downstream, a fetch,
/// a timer — suspends the job and holds no thread; CPU work yields every millisecond, so a CPU
/// spike slows every task rather than starving the rest. Past coroutine.max_tasks live tasks (0 =
/// no limit): 503 task_limit, without running the work. A parallel fan-out is a task per fetch, at
/// most coroutine.fanout_limit at once (0 = no limit). Client disconnects are ignored unless
/// coroutine.cancel_on_disconnect. Thread-safety: all public members may be called from any thread.
/// The destructor stops the threads once every task has ended.
class coroutine_policy final : public execution_policy, private task_host {
 public:
  coroutine_policy(const config& c, metrics& m);
  ~coroutine_policy() override;
  void submit(std::shared_ptr<task> t) override;
  void client_gone(const std::shared_ptr<task>& t) override;
  void reconfigure(const config& c) override;
  void stop_all() override;

  /// Live tasks now (admitted and not yet ended).
  int live_tasks() const { return live_.load(); }

 private:
  class lane;
  void task_ended(task& t) noexcept override;
  void resize_locked(int threads);

  const rejection& shutting_down_;
  /// coroutine.max_tasks (0: unbounded; 503 task_limit past it) and the adaptive limit, on
  /// tasks admitted and not ended
  limiter max_tasks_;
  std::atomic<bool> cancel_on_disconnect_;
  std::atomic<int> fanout_limit_;
  std::atomic<int> retry_after_s_;
  std::atomic<int> live_{0};
  std::atomic<unsigned> next_lane_{0};
  std::atomic<int> lanes_in_use_{0};  ///< new tasks go to the first lanes_in_use_ lanes

  std::mutex mutex_;  ///< guards everything below
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<lane>> lanes_;  ///< never shrinks while tasks may use it
  /// For stop_all; a set, so tens of thousands of tasks each leave it in O(1).
  std::unordered_set<std::shared_ptr<task>> running_;
  bool stopping_ = false;
};

}  // namespace stampede
