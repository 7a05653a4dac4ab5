#pragma once
/// \file The Prometheus metrics of stampede. Every labelled child is created once, here or
/// (what a mode owns: its reasons, its gauges) by its policy; the hot path only touches
/// pointers. Names are a contract (dashboards, load tests).

#include <prometheus/client_metric.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "handlers/labs/labs.hpp"
#include "handlers/work.hpp"
#include "server/admission.hpp"

// Counters and histograms the request path records into without a lock: each thread
// adds into one of a few cache-line-sized shards (chosen once per thread), and a scrape sums
// them (userver and Seastar count per thread the same way; prometheus-cpp's
// Histogram::Observe takes a mutex per observation, fine at a scrape's rate and not at a
// request's). Their interface mirrors prometheus-cpp's; sharded_families exports them with a
// registry's families at scrape time.

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

namespace stampede {

/// \brief The metrics one mode writes, all labelled with that mode.
/// Thread-safety: every member is safe to update from any thread.
struct mode_metrics {
  /// The reason `reason` of this mode's vocabulary, made (and its stampede_rejected_total
  /// series exported) at the first call; later calls return the same one, which lives as
  /// long as the metrics. Called when a policy is made, not per request.
  const rejection& rejection_for(std::string_view reason, bool dropped = false);
  /// The reasons made so far, in the order they were.
  std::vector<std::string> reasons() const;

  prometheus::Gauge* info = nullptr;            ///< stampede_mode_info
  prometheus::Gauge* tasks_queued = nullptr;    ///< stampede_tasks{state="queued"}
  prometheus::Gauge* tasks_running = nullptr;   ///< stampede_tasks{state="running"}
  prometheus::Gauge* limit = nullptr;           ///< stampede_limit: the admission limit now
  prometheus::Gauge* limit_inflight = nullptr;  ///< stampede_limit_inflight: places taken
  sharded_counter* tasks_started = nullptr;
  /// stampede_admissions_total by criticality: [level][0] admitted, [level][1] turned away.
  std::array<std::array<sharded_counter*, 2>, criticality_count> admissions{};
  prometheus::Counter* cancelled_queued = nullptr;
  prometheus::Counter* cancelled_running = nullptr;
  prometheus::Counter* client_disconnects = nullptr;
  prometheus::Counter* wasted_seconds = nullptr;
  std::array<sharded_histogram*, handler_count> duration{};
  std::array<sharded_histogram*, handler_count> success_duration{};  ///< 2xx only

  std::string name;  ///< the mode's label
  prometheus::Family<prometheus::Counter>* rejected_family = nullptr;

 private:
  mutable std::mutex rejections_mutex_;  ///< guards rejections_ and order_
  std::map<std::string, std::unique_ptr<rejection>, std::less<>> rejections_;
  std::vector<std::string> order_;
};

/// \brief All of stampede's metrics and their registry.
/// Thread-safety: safe for concurrent use; `serialize` may run while requests update.
class metrics {
 public:
  metrics();
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  mode_metrics& for_mode(mode_kind m) { return modes_[static_cast<int>(m)]; }

  /// Counts one finished request with its status code and duration.
  void count_request(mode_kind m, handler_id h, int status, double seconds);

  /// Marks `m` as the active mode in stampede_mode_info.
  void set_active_mode(mode_kind m);

  /// The Prometheus text exposition of everything, with /proc, the downstream's gauges and
  /// the requests' memory read now.
  std::string serialize();
  /// The same, as metric families (what serialize writes out).
  std::vector<prometheus::MetricFamily> collect();

  /// Where the downstream's capacity, in_use and waiting gauges are read (at scrape time):
  /// the simulation's slots, or the remote client's pool. Set once, before serving.
  void watch_downstream(std::function<downstream::snapshot()> stats) {
    downstream_stats_ = std::move(stats);
  }
  /// The labs whose figures are exported (stampede_lab_*, read at scrape time). Set once.
  void watch_labs(labs* l) { labs_ = l; }
  /// More families, added at scrape time (the presenter's annotations). Set once.
  void watch_more(std::function<void(std::vector<prometheus::MetricFamily>&)> more) {
    more_ = std::move(more);
  }

  // What a mode exports of its own (bounded's queue, thread_per_request's thread starts) is
  // made by its policy, here: the metrics name none of it. Each is made at the first call and
  // the same one is returned after (a mode switched back to makes a new policy).

  /// A gauge of the mode's own; `live_key` names it in the live page's samples.
  prometheus::Gauge& own_gauge(const std::string& name, const std::string& help,
                               const std::string& live_key);
  /// A histogram of the mode's own, of `bounds` (seconds; duration_buckets(): a request's).
  sharded_histogram& own_histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& bounds);
  /// The live page's keys of the modes' own gauges, with their metric names.
  std::vector<std::pair<std::string, std::string>> own_series() const;
  /// \brief A chart of a mode's own gauges on the live page: what it shows, how to read it.
  struct own_chart {
    std::string id, title, hint;
    std::vector<std::pair<std::string, std::string>> series;  ///< label, live key
  };
  /// Puts `c` on the live page (once per id).
  void add_own_chart(own_chart c);
  /// What the live page draws beyond what every mode has, as a JSON object: the modes, every
  /// reason to reject that a mode has made, and the modes' own charts.
  std::string vocabulary_json() const;
  /// Buckets fit for a request's time (5 ms to 30 s), as the request histograms use.
  static std::vector<double> duration_buckets();

  /// What the downstream calls with each wait for a slot (downstream::on_wait): observed into
  /// downstream_wait_seconds.
  std::function<void(double)> downstream_wait_observer();
  prometheus::Gauge& connections_active() { return *connections_active_; }
  prometheus::Counter& connections_refused() { return *connections_refused_; }
  prometheus::Counter& config_reloads(bool ok) { return ok ? *reloads_ok_ : *reloads_error_; }
  /// A remote dependency's attempts (every try, retries included), by how each ended.
  prometheus::Counter& downstream_calls(call_outcome o) {
    return *downstream_calls_[static_cast<int>(o)];
  }
  prometheus::Counter& downstream_retries() { return *downstream_retries_; }
  prometheus::Counter& downstream_retries_denied() { return *downstream_retries_denied_; }

 private:
  void collect_labs(std::vector<prometheus::MetricFamily>& families);

  std::shared_ptr<prometheus::Registry> registry_;
  sharded_families sharded_;  ///< what the request path records: no lock per observation
  std::string requests_name, requests_help;
  std::array<mode_metrics, mode_count> modes_{};
  /// requests_[mode][handler][code index]; codes outside the fixed list are added lazily.
  static constexpr std::array<int, 16> codes_ = {200, 400, 404, 405, 408, 413, 414, 431,
                                                 499, 500, 501, 502, 503, 504, 505, 0};
  std::array<std::array<std::array<sharded_counter*, codes_.size()>, handler_count>, mode_count>
      requests_{};
  std::mutex rare_codes_mutex_;                                       ///< guards rare_codes_
  std::map<std::tuple<int, int, int>, sharded_counter*> rare_codes_;  ///< codes not in codes_
  sharded_histogram* downstream_wait_seconds_ = nullptr;
  mutable std::mutex own_mutex_;  ///< guards the two maps below
  std::map<std::string, prometheus::Gauge*> own_gauges_;
  std::map<std::string, sharded_histogram*> own_histograms_;
  std::vector<std::pair<std::string, std::string>> own_series_;  ///< live key, metric name
  std::vector<own_chart> own_charts_;
  std::function<downstream::snapshot()> downstream_stats_;
  std::array<prometheus::Counter*, call_outcome_count> downstream_calls_{};
  prometheus::Counter* downstream_retries_ = nullptr;
  prometheus::Counter* downstream_retries_denied_ = nullptr;
  labs* labs_ = nullptr;
  std::function<void(std::vector<prometheus::MetricFamily>&)> more_;
  prometheus::Gauge* connections_active_ = nullptr;
  prometheus::Counter* connections_refused_ = nullptr;
  prometheus::Counter* reloads_ok_ = nullptr;
  prometheus::Counter* reloads_error_ = nullptr;
  std::mutex serialize_mutex_;  ///< one scrape at a time (only the admin thread scrapes)
};

}  // namespace stampede
