#pragma once
/// \file Counters and histograms the request path records into without a lock: each thread
/// adds into one of a few cache-line-sized shards (chosen once per thread), and a scrape sums
/// them (userver and Seastar count per thread the same way; prometheus-cpp's
/// Histogram::Observe takes a mutex per observation, fine at a scrape's rate and not at a
/// request's). Their interface mirrors prometheus-cpp's; sharded_families exports them with a
/// registry's families at scrape time.

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

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

/// \brief A histogram with fixed bucket bounds (seconds). Thread-safety: as sharded_counter.
class sharded_histogram {
 public:
  explicit sharded_histogram(std::vector<double> bounds);
  void Observe(double seconds);
  prometheus::ClientMetric Collect() const;

 private:
  struct alignas(64) shard {
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts;  ///< per bucket, +Inf last
    std::atomic<std::uint64_t> sum_ns{0};
  };
  std::vector<double> bounds_;
  std::array<shard, metric_shards> shards_;
};

/// \brief Families of sharded metrics, exported with a registry's families at scrape time.
/// Children never move once made. Thread-safety: making children and collecting take a lock
/// (rare, and at scrape rate); recording into a child takes none.
class sharded_families {
 public:
  using labels = std::map<std::string, std::string>;
  sharded_counter& counter(const std::string& family, const std::string& help, const labels& l);
  sharded_histogram& histogram(const std::string& family, const std::string& help, const labels& l,
                               const std::vector<double>& bounds);
  /// Appends every family, in the order they were first named.
  void collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  struct child {
    labels l;
    std::variant<sharded_counter*, sharded_histogram*> metric;
  };
  struct family {
    std::string name, help;
    prometheus::MetricType type;
    std::vector<child> children;
  };
  family& find(const std::string& name, const std::string& help, prometheus::MetricType type);

  mutable std::mutex mutex_;  ///< guards the structure below, not the values
  std::deque<family> families_;
  std::deque<sharded_counter> counters_;
  std::deque<sharded_histogram> histograms_;
};

}  // namespace stampede
