#pragma once
/// \file thread-per-request mode: a new OS thread for every admitted request, unbounded
/// but for a safety ceiling — the runaway.

#include <condition_variable>
#include <mutex>
#include <unordered_set>

#include "handlers/fanout.hpp"
#include "server/execution_policy.hpp"
#include "server/limiter.hpp"

namespace stampede {

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
  mode_kind mode() const override { return mode_kind::thread_per_request; }
  void submit(std::shared_ptr<task> t) override;
  void client_gone(const std::shared_ptr<task>& t) override;
  void reconfigure(const config& c) override;
  void stop_all() override;

  /// \brief Fan-out with a thread per fetch: the unbounded way.
  struct thread_fanout final : fanout_runner {
    int run_parallel(int count, std::chrono::milliseconds each, downstream* ds,
                     std::chrono::steady_clock::time_point deadline, std::stop_token stop,
                     call_outcome* failure) override {
      return thread_per_fetch(count, each, ds, deadline, stop, failure);
    }
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
  thread_fanout fanout_;
};

}  // namespace stampede
