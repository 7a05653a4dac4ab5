#include "server/sharded_counter.hpp"

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

}  // namespace stampede
