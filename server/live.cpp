#include "server/live.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <sstream>

namespace stampede {

namespace {

using labels = std::map<std::string, std::string>;

bool matches(const prometheus::ClientMetric& m, const labels& want) {
  for (const auto& kv : want) {
    auto it =
        std::find_if(m.label.begin(), m.label.end(),
                     [&](const prometheus::ClientMetric::Label& l) { return l.name == kv.first; });
    if (it == m.label.end() || it->value != kv.second) return false;
  }
  return true;
}

std::string label_of(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return {};
}

double value_of(const prometheus::MetricFamily& f, const prometheus::ClientMetric& m) {
  switch (f.type) {
    case prometheus::MetricType::Counter:
      return m.counter.value;
    case prometheus::MetricType::Gauge:
      return m.gauge.value;
    default:
      return m.untyped.value;
  }
}

/// Reads the families the way a PromQL `sum(name{labels})` would.
struct view {
  const std::vector<prometheus::MetricFamily>& families;

  const prometheus::MetricFamily* family(std::string_view name) const {
    for (const auto& f : families) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
  std::optional<double> sum(std::string_view name, const labels& want = {}) const {
    const auto* f = family(name);
    if (f == nullptr) return std::nullopt;
    double total = 0;
    for (const auto& m : f->metric) {
      if (matches(m, want)) total += value_of(*f, m);
    }
    return total;
  }
  /// Summed by the value of `label`.
  std::map<std::string, double> by(std::string_view name, const std::string& label) const {
    std::map<std::string, double> out;
    if (const auto* f = family(name)) {
      for (const auto& m : f->metric) out[label_of(m, label)] += value_of(*f, m);
    }
    return out;
  }
  /// A histogram's cumulative buckets summed over every series: (upper bound, count).
  std::vector<std::pair<double, double>> buckets(std::string_view name) const {
    std::map<double, double> le;
    if (const auto* f = family(name)) {
      for (const auto& m : f->metric) {
        for (const auto& b : m.histogram.bucket) {
          le[b.upper_bound] += static_cast<double>(b.cumulative_count);
        }
      }
    }
    return {le.begin(), le.end()};
  }
};

/// histogram_quantile over bucket increases, as Prometheus computes it: linear within the
/// bucket; the +Inf bucket answers the highest finite bound.
std::optional<double> quantile(double q, const std::vector<std::pair<double, double>>& inc) {
  if (inc.empty()) return std::nullopt;
  double total = inc.back().second;
  if (total <= 0) return std::nullopt;
  double rank = q * total;
  double lower = 0, below = 0;
  for (const auto& [upper, count] : inc) {
    if (count >= rank) {
      if (std::isinf(upper)) return lower;
      double in_bucket = count - below;
      if (in_bucket <= 0) return upper;
      return lower + (upper - lower) * (rank - below) / in_bucket;
    }
    lower = upper;
    below = count;
  }
  return lower;
}

}  // namespace

void live_history::record(const std::vector<prometheus::MetricFamily>& families, double unix_time,
                          const std::vector<std::pair<std::string, std::string>>& own_series) {
  view v{families};
  auto codes = v.by("stampede_http_requests_total", "code");
  auto reasons = v.by("stampede_rejected_total", "reason");
  std::map<std::string, double> now;
  for (const auto& [code, n] : codes) now["code " + code] = n;
  for (const auto& [reason, n] : reasons) now["rejected " + reason] = n;
  now["cancelled"] = v.sum("stampede_cancelled_total").value_or(0);
  now["wasted"] = v.sum("stampede_wasted_work_seconds_total").value_or(0);
  now["disconnects"] = v.sum("stampede_client_disconnects_total").value_or(0);
  now["cpu"] = v.sum("process_cpu_seconds_total").value_or(0);
  auto le = v.buckets("stampede_http_success_duration_seconds");

  std::lock_guard lock(mutex_);
  if (last_time_ && unix_time > *last_time_) {
    double dt = unix_time - *last_time_;
    auto rate = [&](const std::string& key) {
      auto it = last_.find(key);
      double before = it == last_.end() ? 0 : it->second;
      auto at = now.find(key);
      double after = at == now.end() ? 0 : at->second;
      return std::max(0.0, after - before) / dt;
    };
    boost::json::object s;
    s["t"] = unix_time;
    std::string mode;
    if (const auto* f = v.family("stampede_mode_info")) {
      for (const auto& m : f->metric) {
        if (m.gauge.value == 1) mode = label_of(m, "mode");
      }
    }
    s["mode"] = mode;
    auto put = [&](const char* key, std::optional<double> x) {
      if (x) {
        s[key] = *x;
      } else {
        s[key] = nullptr;
      }
    };
    put("tasks_queued", v.sum("stampede_tasks", {{"state", "queued"}}));
    // 0 is "no limit" in the metric; the page shows it as no value rather than a floor of 0.
    auto limit = v.sum("stampede_limit", {{"mode", mode}});
    put("limit", limit && *limit > 0 ? limit : std::nullopt);
    put("limit_inflight", v.sum("stampede_limit_inflight", {{"mode", mode}}));
    put("tasks_running", v.sum("stampede_tasks", {{"state", "running"}}));
    put("os_threads", v.sum("stampede_os_threads"));
    double ok = 0, rejected503 = 0, all503 = 0, gone = 0, other = 0;
    for (const auto& [key, n] : now) {
      if (key.rfind("code ", 0) != 0) continue;
      int code = std::atoi(key.c_str() + 5);
      double r = rate(key);
      if (code >= 200 && code < 300) {
        ok += r;
      } else if (code == 503) {
        all503 += r;
      } else if (code == 499) {
        gone += r;
      } else {
        other += r;
      }
    }
    s["rps_2xx"] = ok;
    s["rps_499"] = gone;
    s["rps_other"] = other;
    boost::json::object by_reason;
    for (const auto& [reason, n] : reasons) {
      if (reason.empty()) continue;
      double r = rate("rejected " + reason);
      by_reason[reason] = r;
      rejected503 += r;
    }
    s["rps_503"] = by_reason;
    // 503s that are not rejections: a request out of memory, work cancelled mid-way.
    s["rps_503_other"] = std::max(0.0, all503 - rejected503);
    s["rejected_per_s"] = rejected503;
    s["cancelled_per_s"] = rate("cancelled");
    s["wasted_per_s"] = rate("wasted");
    s["cpu_cores"] = rate("cpu");
    // Quantiles of the 2xx answered during the last second.
    std::vector<std::pair<double, double>> inc;
    if (last_le_.size() == le.size()) {
      for (std::size_t i = 0; i < le.size(); ++i) {
        inc.emplace_back(le[i].first, std::max(0.0, le[i].second - last_le_[i].second));
      }
    }
    auto ms = [](std::optional<double> sec) -> std::optional<double> {
      if (!sec) return std::nullopt;
      return *sec * 1000.0;
    };
    put("p50_ms", ms(quantile(0.50, inc)));
    put("p99_ms", ms(quantile(0.99, inc)));
    // The modes' own gauges, under the keys their policies gave them.
    for (const auto& [key, name] : own_series) put(key.c_str(), v.sum(name));
    put("ds_in_use", v.sum("stampede_downstream_in_use"));
    put("ds_waiting", v.sum("stampede_downstream_waiting"));
    put("ds_capacity", v.sum("stampede_downstream_capacity"));
    put("rss_bytes", v.sum("process_resident_memory_bytes"));
    put("memory_limit_bytes", v.sum("stampede_memory_limit_bytes"));
    put("oom_kills", v.sum("stampede_oom_kills_total"));
    put("request_memory_bytes", v.sum("stampede_request_memory_bytes"));
    put("task_memory_bytes", v.sum("stampede_task_memory_bytes"));
    put("connections", v.sum("stampede_connections_active"));
    // The failure labs (lost updates are the same over every variant: 0 for the fixed ones).
    auto expected = v.sum("stampede_lab_lost_update_expected");
    auto value = v.sum("stampede_lab_lost_update_value");
    if (expected && value) put("lab_lost_updates", std::max(0.0, *expected - *value));
    // Seats sold below a stock of 0, by the variants that can oversell (racy and atomic).
    double oversold = 0;
    for (const auto& [variant, stock] : v.by("stampede_lab_stock", "variant")) {
      oversold += std::max(0.0, -stock);
    }
    put("lab_oversold", oversold);
    put("lab_leaked", v.sum("stampede_lab_leaked"));
    put("lab_waits", v.sum("stampede_lab_waits"));
    put("lab_deadlocks", v.sum("stampede_lab_deadlocks_total"));
    put("lab_starved", v.sum("stampede_lab_starved_total"));
    put("lab_lock_waiting", v.sum("stampede_lab_lock_waiting"));
    put("lab_cleanups", v.sum("stampede_lab_cleanups"));
    // The cumulative counters the rates came from, as /metrics shows them.
    boost::json::object totals;
    double requests = 0;
    for (const auto& [code, n] : codes) requests += n;
    totals["requests"] = requests;
    totals["rejected"] = v.sum("stampede_rejected_total").value_or(0);
    totals["cancelled"] = now["cancelled"];
    totals["wasted_seconds"] = now["wasted"];
    totals["client_disconnects"] = now["disconnects"];
    s["totals"] = totals;
    s["seq"] = next_seq_;
    samples_.emplace_back(next_seq_++, boost::json::serialize(s));
    while (samples_.size() > capacity_) samples_.pop_front();
  }
  last_time_ = unix_time;
  last_ = std::move(now);
  last_le_ = std::move(le);
}

std::string live_history::json_after(std::uint64_t after) const {
  std::lock_guard lock(mutex_);
  std::string out = "{\"interval_s\":1,\"started\":";
  out += boost::json::serialize(boost::json::value(started_));
  out += ",\"config\":";
  out += boost::json::serialize(boost::json::value(config_path_));
  if (vocabulary_) {
    out += ",\"vocabulary\":";
    out += vocabulary_();
  }
  out += ",\"samples\":[";
  bool first = true;
  for (const auto& [seq, json] : samples_) {
    if (seq <= after) continue;
    if (!first) out += ',';
    out += json;
    first = false;
  }
  out += "]}";
  return out;
}

}  // namespace stampede
