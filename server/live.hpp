#pragma once
/// \file The live page's data: once a second the server reads its own metrics (the same
/// families /metrics writes out), turns counters into rates over that second and histograms
/// into quantiles, and keeps the last ten minutes. The admin port serves it as JSON.

#include <prometheus/metric_family.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stampede {

/// \brief The last `capacity` one-second samples. Thread-safety: record and json_after may be
/// called from different threads.
class live_history {
 public:
  /// `started` (Unix seconds) names this server's run: a page that sees it change (a restart
  /// on the same port) starts its history afresh.
  explicit live_history(std::size_t capacity = 600, double started = 0)
      : capacity_(capacity), started_(started) {}

  /// Takes a sample from `families` read at `unix_time`. The first call only sets the
  /// baseline for rates. `own_series`: the modes' own gauges (metrics::own_series), as live
  /// key and metric name.
  void record(const std::vector<prometheus::MetricFamily>& families, double unix_time,
              const std::vector<std::pair<std::string, std::string>>& own_series = {});

  /// JSON: {"interval_s", "started", "config", "vocabulary" (when set), "samples": [...]}
  /// with the samples after sequence `after` (0: all kept).
  std::string json_after(std::uint64_t after) const;

  /// Shown on the page as the way to switch modes; set once.
  void set_config_path(std::string path) { config_path_ = std::move(path); }
  /// What the page draws beyond what every mode has (metrics::vocabulary_json), read at each
  /// json_after: a mode's reasons and charts appear once its policy has been made. Set once.
  void set_vocabulary(std::function<std::string()> f) { vocabulary_ = std::move(f); }

 private:
  struct reading;  ///< the cumulative values of one read
  std::size_t capacity_;
  double started_;
  mutable std::mutex mutex_;
  std::deque<std::pair<std::uint64_t, std::string>> samples_;  ///< sequence, JSON object
  std::uint64_t next_seq_ = 1;
  std::optional<double> last_time_;
  std::map<std::string, double> last_;              ///< cumulative values at the last read
  std::vector<std::pair<double, double>> last_le_;  ///< 2xx duration buckets at the last read
  std::string config_path_;
  std::function<std::string()> vocabulary_;
};

}  // namespace stampede
