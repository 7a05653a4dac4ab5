#include "server/sharded_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace stampede {

std::size_t this_thread_shard() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % metric_shards;
}

double sharded_counter::Value() const {
  std::uint64_t sum = 0;
  for (const auto& c : cells_) sum += c.v.load(std::memory_order_relaxed);
  return static_cast<double>(sum);
}

prometheus::ClientMetric sharded_counter::Collect() const {
  prometheus::ClientMetric m;
  m.counter.value = Value();
  return m;
}

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

sharded_families::family& sharded_families::find(const std::string& name, const std::string& help,
                                                 prometheus::MetricType type) {
  for (auto& f : families_) {
    if (f.name == name) return f;
  }
  return families_.emplace_back(family{name, help, type, {}});
}

sharded_counter& sharded_families::counter(const std::string& name, const std::string& help,
                                           const labels& l) {
  std::lock_guard lock(mutex_);
  auto& c = counters_.emplace_back();
  find(name, help, prometheus::MetricType::Counter).children.push_back({l, &c});
  return c;
}

sharded_histogram& sharded_families::histogram(const std::string& name, const std::string& help,
                                               const labels& l, const std::vector<double>& bounds) {
  std::lock_guard lock(mutex_);
  auto& h = histograms_.emplace_back(bounds);
  find(name, help, prometheus::MetricType::Histogram).children.push_back({l, &h});
  return h;
}

void sharded_families::collect(std::vector<prometheus::MetricFamily>& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    prometheus::MetricFamily mf;
    mf.name = f.name;
    mf.help = f.help;
    mf.type = f.type;
    for (const auto& c : f.children) {
      auto m = std::visit([](auto* metric) { return metric->Collect(); }, c.metric);
      for (const auto& [k, v] : c.l) m.label.push_back({k, v});
      mf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(mf));
  }
}

}  // namespace stampede
