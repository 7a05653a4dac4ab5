#pragma once
/// \file thread-per-request mode: a new OS thread for every admitted request, unbounded
/// but for a safety ceiling — the runaway.

#include <condition_variable>
#include <mutex>
#include <unordered_set>

#include "server/execution_policy.hpp"
#include "server/modes/thread_waits.hpp"

namespace stampede {

/// Runs each fetch on a thread of its own (the unbounded way), each a call to `ds` (a
/// blocking remote call if it has a remote). If a thread cannot be created, that fetch runs
/// on the calling thread instead. Returns the fetches that succeeded.
int thread_per_fetch(int count, std::chrono::milliseconds each, downstream* ds,
                     std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                     call_outcome* failure);

/// \brief Spawns a detached OS thread per request that ends with the request.
/// Past thread_per_request.max_threads live request threads: 503 thread_ceiling. When the OS
/// refuses a thread (std::system_error): 503 spawn_failed. Client disconnects are ignored
/// unless thread_per_request.cancel_on_disconnect is true. Fan-out spawns a thread per fetch.
/// Thread-safety: all members may be called from any thread. The destructor stops the
/// request threads still running and waits for them to exit.
class thread_per_request_policy final : public execution_policy {
 public:
  thread_per_request_policy(const config& c, metrics& m);
  ~thread_per_request_policy() override;
  void submit(std::shared_ptr<task> t) override;
  void client_gone(const std::shared_ptr<task>& t) override;
  void reconfigure(const config& c) override;
  void stop_all() override;

  /// \brief A request thread's waits, whose fan-out has a thread per fetch: the unbounded way.
  struct fetch_per_thread final : thread_waits {
    fetch_per_thread() : thread_waits(0) {}
    job<int> fan_out(int count, std::chrono::milliseconds each, const work_context& ctx,
                     std::chrono::steady_clock::time_point deadline,
                     call_outcome* failure) override;
  };

 private:
  sharded_histogram& spawn_seconds_;  ///< stampede_thread_spawn_seconds: this mode's own
  // This mode's reasons to turn a request away.
  const rejection& shutting_down_;
  const rejection& spawn_failed_;  ///< the OS refused a thread
  /// thread_per_request.max_threads, the safety ceiling (503 thread_ceiling), and the
  /// adaptive limit, on requests with a thread.
  limiter ceiling_;
  std::atomic<bool> cancel_on_disconnect_;
  std::atomic<bool> stopping_{false};
  std::mutex live_mutex_;
  std::condition_variable live_cv_;
  int live_ = 0;  ///< request threads alive; guarded by live_mutex_
  /// For stop_all; a set, so thousands of request threads each leave it in O(1).
  std::unordered_set<std::shared_ptr<task>> running_;  ///< guarded by live_mutex_
  fetch_per_thread waits_;
};

}  // namespace stampede
