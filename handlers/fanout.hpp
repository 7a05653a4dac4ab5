#pragma once
/// \file Ways to run K fetches from the downstream at once, shared by the modes.

#include <atomic>

#include "handlers/work.hpp"

namespace stampede {

/// Runs up to `limit` fetches in flight at once on the calling thread, as an event loop
/// waits on many sockets: no extra threads. Each fetch holds a slot of `ds` (null: no
/// limit); the first waits for one in line, further ones start only while slots are free.
/// Takes at least ceil(count/limit)·each. Returns how many completed before `stop`. With a
/// remote dependency the calls are real and asynchronous (call_many), `limit` at once.
int multiplexed_fetches(int count, int limit, std::chrono::milliseconds each, downstream* ds,
                        std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                        call_outcome* failure);

/// Runs each fetch on a thread of its own (the unbounded way), each a call to `ds` (a
/// blocking remote call if it has a remote). If a thread cannot be created, that fetch runs
/// on the calling thread instead. Returns the fetches that succeeded.
int thread_per_fetch(int count, std::chrono::milliseconds each, downstream* ds,
                     std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                     call_outcome* failure);

/// \brief fanout_runner with at most `limit` fetches in flight, multiplexed on the caller.
/// Thread-safety: run_parallel and set_limit may be called from any thread.
class multiplexed_fanout final : public fanout_runner {
 public:
  explicit multiplexed_fanout(int limit) : limit_(limit) {}
  int run_parallel(int count, std::chrono::milliseconds each, downstream* ds,
                   std::chrono::steady_clock::time_point deadline, std::stop_token stop,
                   call_outcome* failure) override {
    int limit = limit_.load();
    return multiplexed_fetches(count, limit > 0 ? limit : count, each, ds, deadline, stop, failure);
  }
  void set_limit(int limit) { limit_.store(limit); }

 private:
  std::atomic<int> limit_;  ///< 0 = as many as asked
};

}  // namespace stampede
