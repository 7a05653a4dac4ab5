#include "server/sharded_families.hpp"

namespace stampede {

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
