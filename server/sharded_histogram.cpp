#include "server/sharded_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace stampede {

sharded_histogram::sharded_histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (auto& s : shards_) {
    s.counts = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) s.counts[i].store(0);
  }
}

void sharded_histogram::Observe(double seconds) {
  // Bucket i counts observations <= bounds_[i] (Prometheus' "le"); the last one is +Inf.
  auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
                                    bounds_.begin());
  auto& s = shards_[this_thread_shard()];
  s.counts[i].fetch_add(1, std::memory_order_relaxed);
  if (seconds > 0) {
    s.sum_ns.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e9)),
                       std::memory_order_relaxed);
  }
}

prometheus::ClientMetric sharded_histogram::Collect() const {
  std::vector<std::uint64_t> counts(bounds_.size() + 1, 0);
  std::uint64_t sum_ns = 0;
  for (const auto& s : shards_) {
    for (std::size_t i = 0; i < counts.size(); ++i) {
      counts[i] += s.counts[i].load(std::memory_order_relaxed);
    }
    sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  prometheus::ClientMetric m;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    prometheus::ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(b);
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
  return m;
}

}  // namespace stampede
