#pragma once
/// \file A histogram the request path records into without a lock (prometheus-cpp's
/// Histogram::Observe takes a mutex per observation, fine at a scrape's rate and not at a
/// request's), sharded per thread like sharded_counter.

#include <prometheus/client_metric.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "server/sharded_counter.hpp"

namespace stampede {

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

}  // namespace stampede
