#include "server/metrics.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <limits>
#include <sstream>

#include "handlers/job.hpp"
#include "server/memory_cgroup.hpp"
#include "server/proc_stats.hpp"

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

namespace stampede {

const rejection& mode_metrics::rejection_for(std::string_view reason, bool dropped) {
  std::lock_guard lock(rejections_mutex_);
  auto it = rejections_.find(reason);
  if (it == rejections_.end()) {
    auto r = std::make_unique<rejection>();
    // The reason's text lives in the map's key: the view stays valid.
    it = rejections_.emplace(std::string(reason), std::move(r)).first;
    order_.push_back(it->first);
    rejection& made = *it->second;
    made.reason = it->first;
    made.dropped = dropped;
    made.counted = &rejected_family->Add({{"mode", name}, {"reason", it->first}});
    const char* what = reason == common_reason::shutting_down ? "shutting down" : "overloaded";
    made.body = error_response(503, what, made.reason, name).body;
  }
  return *it->second;
}

std::vector<double> metrics::duration_buckets() {
  // Fine enough around the workloads' usual 5-500 ms that interpolated quantiles mean something.
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
          0.5,    0.75,  1,      1.5,   2,    3,     5,    7.5,   10,  15,   20,  30};
}

prometheus::Gauge& metrics::own_gauge(const std::string& name, const std::string& help,
                                      const std::string& live_key) {
  std::lock_guard lock(own_mutex_);
  auto& g = own_gauges_[name];
  if (g == nullptr) {
    g = &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
    own_series_.emplace_back(live_key, name);
  }
  return *g;
}

sharded_histogram& metrics::own_histogram(const std::string& name, const std::string& help,
                                          const std::vector<double>& bounds) {
  std::lock_guard lock(own_mutex_);
  auto& h = own_histograms_[name];
  if (h == nullptr) h = &sharded_.histogram(name, help, {}, bounds);
  return *h;
}

std::vector<std::pair<std::string, std::string>> metrics::own_series() const {
  std::lock_guard lock(own_mutex_);
  return own_series_;
}

std::vector<std::string> mode_metrics::reasons() const {
  std::lock_guard lock(rejections_mutex_);
  return order_;
}

void metrics::add_own_chart(own_chart c) {
  std::lock_guard lock(own_mutex_);
  for (const auto& have : own_charts_) {
    if (have.id == c.id) return;
  }
  own_charts_.push_back(std::move(c));
}

std::string metrics::vocabulary_json() const {
  boost::json::object out;
  boost::json::array modes, reasons, charts;
  for (const auto& mm : modes_) {
    modes.emplace_back(mm.name);
    for (const auto& r : mm.reasons()) {
      if (std::find(reasons.begin(), reasons.end(), boost::json::value(r)) == reasons.end()) {
        reasons.emplace_back(r);
      }
    }
  }
  std::lock_guard lock(own_mutex_);
  for (const auto& c : own_charts_) {
    boost::json::array series;
    for (const auto& [label, key] : c.series) series.push_back(boost::json::array{label, key});
    charts.push_back(boost::json::object{
        {"id", c.id}, {"title", c.title}, {"hint", c.hint}, {"series", series}});
  }
  out["modes"] = std::move(modes);
  out["reasons"] = std::move(reasons);
  out["charts"] = std::move(charts);
  return boost::json::serialize(out);
}

namespace {

prometheus::ClientMetric gauge_value(double v) {
  prometheus::ClientMetric m;
  m.gauge.value = v;
  return m;
}

/// A family with one child per variant, labelled variant="…".
template <class Names, class Value>
prometheus::MetricFamily per_variant(const std::string& name, const std::string& help,
                                     prometheus::MetricType type, const Names& names, Value value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  for (std::size_t v = 0; v < std::size(names); ++v) {
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = static_cast<double>(value(v));
    } else {
      m.gauge.value = static_cast<double>(value(v));
    }
    m.label.push_back({"variant", std::string(names[v])});
    f.metric.push_back(std::move(m));
  }
  return f;
}

prometheus::MetricFamily one(const std::string& name, const std::string& help,
                             prometheus::MetricType type, double v) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m = gauge_value(v);
  }
  f.metric.push_back(m);
  return f;
}

}  // namespace

metrics::metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  auto& info = BuildGauge()
                   .Name("stampede_mode_info")
                   .Help("1 for the active execution mode")
                   .Register(*registry_);
  auto& tasks = BuildGauge()
                    .Name("stampede_tasks")
                    .Help("Request work alive now, by state: the goroutine-equivalent count")
                    .Register(*registry_);
  auto& limit = BuildGauge()
                    .Name("stampede_limit")
                    .Help(
                        "Requests a mode admits at once now (0: no limit): its fixed limit, or "
                        "the adaptive one when limiter.algorithm is set and lower")
                    .Register(*registry_);
  auto& limit_inflight = BuildGauge()
                             .Name("stampede_limit_inflight")
                             .Help("Requests holding a place under stampede_limit")
                             .Register(*registry_);
  auto& rejected = BuildCounter()
                       .Name("stampede_rejected_total")
                       .Help("Requests answered 503 without running, by reason")
                       .Register(*registry_);
  auto& cancelled = BuildCounter()
                        .Name("stampede_cancelled_total")
                        .Help("Work stopped because its client left, by stage")
                        .Register(*registry_);
  auto& disconnects = BuildCounter()
                          .Name("stampede_client_disconnects_total")
                          .Help("Clients gone before their response was written")
                          .Register(*registry_);
  auto& wasted = BuildCounter()
                     .Name("stampede_wasted_work_seconds_total")
                     .Help("Handler time spent after its client had left")
                     .Register(*registry_);

  requests_name = "stampede_http_requests_total";
  requests_help = "Main-port requests by status code; 499 = the client left first";
  const std::string started_name = "stampede_tasks_started_total";
  const std::string started_help = "Request work that began running";
  const std::string duration_name = "stampede_http_request_duration_seconds";
  const std::string duration_help = "Main port: request read to response written";
  const std::string success_name = "stampede_http_success_duration_seconds";
  const std::string success_help = "Main port, 2xx answers only: request read to response written";
  const std::string admissions_name = "stampede_admissions_total";
  const std::string admissions_help =
      "Requests admission took in or turned away (any 503 reason), by their criticality";

  for (int mi = 0; mi < mode_count; ++mi) {
    std::string mode(to_string(static_cast<mode_kind>(mi)));
    auto& mm = modes_[mi];
    mm.info = &info.Add({{"mode", mode}});
    mm.tasks_queued = &tasks.Add({{"mode", mode}, {"state", "queued"}});
    mm.tasks_running = &tasks.Add({{"mode", mode}, {"state", "running"}});
    mm.limit = &limit.Add({{"mode", mode}});
    mm.limit_inflight = &limit_inflight.Add({{"mode", mode}});
    mm.tasks_started = &sharded_.counter(started_name, started_help, {{"mode", mode}});
    for (int c = 0; c < criticality_count; ++c) {
      const std::string level(to_string(static_cast<criticality>(c)));
      mm.admissions[c][0] =
          &sharded_.counter(admissions_name, admissions_help,
                            {{"mode", mode}, {"criticality", level}, {"result", "admitted"}});
      mm.admissions[c][1] =
          &sharded_.counter(admissions_name, admissions_help,
                            {{"mode", mode}, {"criticality", level}, {"result", "refused"}});
    }
    mm.name = mode;
    mm.rejected_family = &rejected;
    // The seam's reasons, every mode's (the mode's own are made by its policy).
    mm.rejection_for(common_reason::shutting_down);
    mm.rejection_for(common_reason::limit);
    mm.rejection_for(common_reason::shed);
    mm.cancelled_queued = &cancelled.Add({{"mode", mode}, {"stage", "queued"}});
    mm.cancelled_running = &cancelled.Add({{"mode", mode}, {"stage", "running"}});
    mm.client_disconnects = &disconnects.Add({{"mode", mode}});
    mm.wasted_seconds = &wasted.Add({{"mode", mode}});
    for (int h = 0; h < handler_count; ++h) {
      std::string handler(to_string(static_cast<handler_id>(h)));
      mm.duration[h] = &sharded_.histogram(
          duration_name, duration_help, {{"mode", mode}, {"handler", handler}}, duration_buckets());
      mm.success_duration[h] = &sharded_.histogram(
          success_name, success_help, {{"mode", mode}, {"handler", handler}}, duration_buckets());
      for (std::size_t c = 0; c + 1 < codes_.size(); ++c) {
        requests_[mi][h][c] = &sharded_.counter(
            requests_name, requests_help,
            {{"mode", mode}, {"handler", handler}, {"code", std::to_string(codes_[c])}});
      }
    }
  }
  downstream_wait_seconds_ =
      &sharded_.histogram("stampede_downstream_wait_seconds",
                          "Time a call waited for a slot of the downstream (0 when one was free)",
                          {}, duration_buckets());
  connections_active_ = &BuildGauge()
                             .Name("stampede_connections_active")
                             .Help("Open main-port connections")
                             .Register(*registry_)
                             .Add({});
  connections_refused_ =
      &BuildCounter()
           .Name("stampede_connections_refused_total")
           .Help("Main-port connections closed at once: http.max_connections reached")
           .Register(*registry_)
           .Add({});
  auto& reloads = BuildCounter()
                      .Name("stampede_config_reloads_total")
                      .Help("Config reloads by result")
                      .Register(*registry_);
  reloads_ok_ = &reloads.Add({{"result", "ok"}});
  reloads_error_ = &reloads.Add({{"result", "error"}});
  auto& calls = BuildCounter()
                    .Name("stampede_downstream_calls_total")
                    .Help("Attempts to call the remote downstream (retries included), by outcome")
                    .Register(*registry_);
  for (int o = 0; o < call_outcome_count; ++o) {
    downstream_calls_[o] =
        &calls.Add({{"outcome", std::string(to_string(static_cast<call_outcome>(o)))}});
  }
  downstream_retries_ = &BuildCounter()
                             .Name("stampede_downstream_retries_total")
                             .Help("Retries of failed downstream calls (downstream.retries)")
                             .Register(*registry_)
                             .Add({});
  downstream_retries_denied_ =
      &BuildCounter()
           .Name("stampede_downstream_retries_denied_total")
           .Help("Retries the retry budget refused (downstream.retry_budget_percent)")
           .Register(*registry_)
           .Add({});
}

void metrics::count_request(mode_kind m, handler_id h, int status, double seconds) {
  auto mi = static_cast<int>(m);
  auto hi = static_cast<int>(h);
  modes_[mi].duration[hi]->Observe(seconds);
  if (status >= 200 && status < 300) modes_[mi].success_duration[hi]->Observe(seconds);
  for (std::size_t c = 0; c + 1 < codes_.size(); ++c) {
    if (codes_[c] == status) {
      requests_[mi][hi][c]->Increment();
      return;
    }
  }
  // A status outside the fixed list: rare, so a lock and a map are acceptable.
  std::lock_guard lock(rare_codes_mutex_);
  auto& c = rare_codes_[{mi, hi, status}];
  if (c == nullptr) {
    c = &sharded_.counter(requests_name, requests_help,
                          {{"mode", std::string(to_string(m))},
                           {"handler", std::string(to_string(h))},
                           {"code", std::to_string(status)}});
  }
  c->Increment();
}

void metrics::set_active_mode(mode_kind m) {
  for (int i = 0; i < mode_count; ++i) modes_[i].info->Set(i == static_cast<int>(m) ? 1 : 0);
}

std::string metrics::serialize() {
  auto families = collect();
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

void metrics::collect_labs(std::vector<prometheus::MetricFamily>& families) {
  using prometheus::MetricType;
  auto f = labs_->read();
  families.push_back(per_variant("stampede_lab_lost_update_expected",
                                 "Lab lost update (/lab/counter): increments made, counted exactly",
                                 MetricType::Gauge, counter_variants,
                                 [&](std::size_t v) { return f.counter[v].expected; }));
  families.push_back(per_variant(
      "stampede_lab_lost_update_value",
      "Lab lost update (/lab/counter): what the shared count says (expected - value "
      "= updates lost)",
      MetricType::Gauge, counter_variants, [&](std::size_t v) { return f.counter[v].value; }));
  families.push_back(per_variant("stampede_lab_sold_total", "Lab reserve: seats sold",
                                 MetricType::Counter, reserve_variants,
                                 [&](std::size_t v) { return f.reserve[v].sold; }));
  families.push_back(per_variant(
      "stampede_lab_stock", "Lab reserve: seats left (below 0: oversold)", MetricType::Gauge,
      reserve_variants, [&](std::size_t v) { return f.reserve[v].stock; }));
  families.push_back(
      per_variant("stampede_lab_leaked", "Lab leak: helpers still alive after their request ended",
                  MetricType::Gauge, leak_variants, [&](std::size_t v) { return f.leaked[v]; }));
  families.push_back(per_variant(
      "stampede_lab_deadlocks_total", "Lab transfer: lock cycles found by the detector",
      MetricType::Counter, transfer_variants, [&](std::size_t v) { return f.deadlocks[v]; }));
  families.push_back(one("stampede_lab_starved_total",
                         "Lab nested: times the watchdog found the executor starved (parents "
                         "waiting, their children queued, none started)",
                         MetricType::Counter, static_cast<double>(f.starved)));
  families.push_back(per_variant("stampede_lab_lock_waiting",
                                 "Lab lock: requests in line for the lock now", MetricType::Gauge,
                                 lock_variants, [&](std::size_t v) { return f.lock[v].waiting; }));
  families.push_back(per_variant("stampede_lab_lock_acquired_total",
                                 "Lab lock: times the lock was taken", MetricType::Counter,
                                 lock_variants, [&](std::size_t v) { return f.lock[v].acquired; }));
  families.push_back(per_variant(
      "stampede_lab_lock_wait_seconds_total", "Lab lock: time requests spent in line for the lock",
      MetricType::Counter, lock_variants, [&](std::size_t v) { return f.lock[v].wait_seconds; }));
  families.push_back(per_variant("stampede_lab_cpu_fanout_wall_seconds_total",
                                 "Lab cpu_fanout: the requests' wall time (work / wall = speed-up)",
                                 MetricType::Counter, cpu_fanout_variants,
                                 [&](std::size_t v) { return f.cpu_fanout[v].wall_seconds; }));
  families.push_back(per_variant("stampede_lab_cpu_fanout_work_seconds_total",
                                 "Lab cpu_fanout: CPU work asked for, K children x N ms",
                                 MetricType::Counter, cpu_fanout_variants,
                                 [&](std::size_t v) { return f.cpu_fanout[v].work_seconds; }));
  families.push_back(per_variant(
      "stampede_lab_cleanups", "Lab cache: eviction cleanups started or queued, not finished",
      MetricType::Gauge, cache_variants, [&](std::size_t v) { return f.cache[v].cleanups; }));
  families.push_back(per_variant("stampede_lab_cleanups_total",
                                 "Lab cache: eviction cleanups finished", MetricType::Counter,
                                 cache_variants, [&](std::size_t v) { return f.cache[v].done; }));
  families.push_back(per_variant("stampede_lab_cleanups_refused_total",
                                 "Lab cache: eviction cleanups the mode refused or dropped unrun",
                                 MetricType::Counter, cache_variants,
                                 [&](std::size_t v) { return f.cache[v].refused; }));
  families.push_back(per_variant(
      "stampede_lab_cleanup_cpu_seconds_total", "Lab cache: CPU time the cleanups took",
      MetricType::Counter, cache_variants, [&](std::size_t v) { return f.cache[v].cpu_seconds; }));
  families.push_back(one("stampede_lab_waits",
                         "Lab work waiting now for a lock, a hand-over or its children",
                         MetricType::Gauge, f.stuck));
}

std::vector<prometheus::MetricFamily> metrics::collect() {
  std::lock_guard lock(serialize_mutex_);
  auto families = registry_->Collect();
  sharded_.collect(families);
  using prometheus::MetricType;
  auto cg = read_memory_cgroup();
  if (cg.limit_bytes) {
    families.push_back(one("stampede_memory_limit_bytes",
                           "Memory limit of the cgroup the server runs in (absent: none)",
                           MetricType::Gauge, *cg.limit_bytes));
  }
  if (cg.oom_kills) {
    families.push_back(one("stampede_oom_kills_total",
                           "Processes the kernel's OOM killer ended in the server's memory cgroup: "
                           "its earlier runs, when a supervisor restarts it in the same cgroup",
                           MetricType::Counter, *cg.oom_kills));
  }
  if (auto p = read_proc_self()) {
    families.push_back(
        one("stampede_os_threads", "OS threads of the process now", MetricType::Gauge, p->threads));
    families.push_back(one("process_cpu_seconds_total",
                           "Total user and system CPU time spent in seconds.", MetricType::Counter,
                           p->cpu_seconds));
    families.push_back(one("process_resident_memory_bytes", "Resident memory size in bytes.",
                           MetricType::Gauge, p->resident_bytes));
    families.push_back(one("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                           MetricType::Gauge, p->virtual_bytes));
    families.push_back(one("process_open_fds", "Number of open file descriptors.",
                           MetricType::Gauge, p->open_fds));
    families.push_back(one("process_max_fds", "Maximum number of open file descriptors.",
                           MetricType::Gauge, p->max_fds));
    families.push_back(one("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           MetricType::Gauge, p->start_time_seconds));
  }
  if (downstream_stats_) {
    auto d = downstream_stats_();
    families.push_back(one("stampede_downstream_capacity",
                           "Calls the downstream serves at once: slots, or pooled connections to "
                           "a remote one (0 = unlimited)",
                           MetricType::Gauge, d.capacity));
    families.push_back(one("stampede_downstream_in_use",
                           "Downstream calls holding a slot (or a connection) now",
                           MetricType::Gauge, d.in_use));
    families.push_back(one("stampede_downstream_waiting",
                           "Downstream calls waiting in line for a slot (or a connection) now",
                           MetricType::Gauge, d.waiting));
  }
  if (labs_ != nullptr) collect_labs(families);
  if (more_) more_(families);
  families.push_back(one("stampede_request_memory_bytes",
                         "Working-set memory held by requests running now", MetricType::Gauge,
                         static_cast<double>(request_memory_bytes())));
  families.push_back(one("stampede_task_memory_bytes",
                         "Memory held by the coroutine frames of live tasks (every mode's work "
                         "runs as one; thread stacks are not included)",
                         MetricType::Gauge, static_cast<double>(live_frame_bytes())));
  families.push_back(one("stampede_deadline_exceeded_total",
                         "Work answered 504 without running: its caller's deadline "
                         "(X-Stampede-Deadline-Ms) had passed before it started",
                         MetricType::Counter, static_cast<double>(deadline_skips())));
  families.push_back(one("stampede_request_memory_failures_total",
                         "Requests answered 503 no_memory: their working set could not be had",
                         MetricType::Counter, static_cast<double>(request_memory_failures())));
  return families;
}

std::function<void(double)> metrics::downstream_wait_observer() {
  return [h = downstream_wait_seconds_](double seconds) { h->Observe(seconds); };
}

}  // namespace stampede
