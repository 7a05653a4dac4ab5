#pragma once
/// \file A counter the request path increments without a lock: each thread adds into one of a
/// few cache-line-sized shards (chosen once per thread), and a scrape sums them (userver and
/// Seastar count per thread the same way). Its interface mirrors prometheus-cpp's.

#include <prometheus/client_metric.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace stampede {

inline constexpr std::size_t metric_shards = 8;

/// This thread's shard, assigned round-robin the first time a thread records anything.
std::size_t this_thread_shard();

/// \brief A monotonic integer counter. Thread-safety: Increment from any thread; Value and
/// Collect may run concurrently and see a sum that is at most a few increments old.
class sharded_counter {
 public:
  void Increment() { cells_[this_thread_shard()].v.fetch_add(1, std::memory_order_relaxed); }
  double Value() const;
  prometheus::ClientMetric Collect() const;

 private:
  struct alignas(64) cell {
    std::atomic<std::uint64_t> v{0};
  };
  std::array<cell, metric_shards> cells_{};
};

}  // namespace stampede
