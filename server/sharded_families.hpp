#pragma once
/// \file The sharded counters and histograms as Prometheus families, exported with a
/// registry's families at scrape time.

#include <prometheus/metric_family.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "server/sharded_counter.hpp"
#include "server/sharded_histogram.hpp"

namespace stampede {

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
