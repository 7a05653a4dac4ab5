#pragma once
/// \file Ways to run K fetches from the downstream at once, shared by the modes.

#include <atomic>

#include "handlers/work.hpp"

namespace stampede {

/// Runs up to `limit` fetches in flight at once on the calling thread, as an event loop
/// waits on many sockets: no extra threads. Each fetch holds a slot of `ds` (null: no
/// limit); the first waits for one in line, further ones start only while slots are free.
/// Takes at least ceil(count/limit)·each. Returns how many completed before `stop`.
int multiplexed_fetches(int count, int limit, std::chrono::milliseconds each, downstream* ds,
                        const std::stop_token& stop);

/// Runs each fetch on a thread of its own (the unbounded way), each a call to `ds`. If a
/// thread cannot be created, that fetch runs on the calling thread instead. Returns
/// completed fetches.
int thread_per_fetch(int count, std::chrono::milliseconds each, downstream* ds,
                     const std::stop_token& stop);

/// \brief fanout_runner with at most `limit` fetches in flight, multiplexed on the caller.
/// Thread-safety: run_parallel and set_limit may be called from any thread.
class multiplexed_fanout final : public fanout_runner {
 public:
  explicit multiplexed_fanout(int limit) : limit_(limit) {}
  int run_parallel(int count, std::chrono::milliseconds each, downstream* ds,
                   std::stop_token stop) override {
    int limit = limit_.load();
    return multiplexed_fetches(count, limit > 0 ? limit : count, each, ds, stop);
  }
  void set_limit(int limit) { limit_.store(limit); }

 private:
  std::atomic<int> limit_;  ///< 0 = as many as asked
};

}  // namespace stampede
