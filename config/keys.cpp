#include "config/keys.hpp"

#include <algorithm>

#include "config/http_url.hpp"

namespace stampede::keys {

namespace {
bool check_url(std::string_view t, std::string& why) {
  return t.empty() || parse_http_url(t, why).has_value();
}
}  // namespace

#define STAMPEDE_REF(T, member) [](config& c) -> T& { return c.member; }

const std::vector<key_spec>& specs() {
  static const std::vector<key_spec> table = {
      {"mode", mode_spec{}},
      {"main.listen", endpoint_spec{STAMPEDE_REF(endpoint, main.listen)}},
      {"main.io_threads", int_spec{STAMPEDE_REF(int, main.io_threads), 1, 64}},
      {"main.backlog", int_spec{STAMPEDE_REF(int, main.backlog), 1, 65535}},
      {"admin.listen", endpoint_spec{STAMPEDE_REF(endpoint, admin.listen)}},
      {"admin.token", string_spec{STAMPEDE_REF(std::string, admin.token), true}},
      {"limits.max_ms", int_spec{STAMPEDE_REF(int, limits.max_ms), 1, 3600000}},
      {"limits.max_fanout", int_spec{STAMPEDE_REF(int, limits.max_fanout), 1, 10000}},
      {"limits.max_kb", int_spec{STAMPEDE_REF(int, limits.max_kb), 0, 1048576}},
      {"work.request_kb", int_spec{STAMPEDE_REF(int, work.request_kb), 0, 1048576}},
      {"downstream.capacity", int_spec{STAMPEDE_REF(int, downstream.capacity), 0, 1000000}},
      {"downstream.url", string_spec{STAMPEDE_REF(std::string, downstream.url), false, check_url}},
      {"downstream.timeout_ms", int_spec{STAMPEDE_REF(int, downstream.timeout_ms), 1, 600000}},
      {"downstream.retries", int_spec{STAMPEDE_REF(int, downstream.retries), 0, 10}},
      {"downstream.retry_budget_percent",
       int_spec{STAMPEDE_REF(int, downstream.retry_budget_percent), 0, 100}},
      {"downstream.propagate_deadline",
       bool_spec{STAMPEDE_REF(bool, downstream.propagate_deadline)}},
      {"http.header_timeout_ms", int_spec{STAMPEDE_REF(int, http.header_timeout_ms), 10, 600000}},
      {"http.idle_timeout_ms", int_spec{STAMPEDE_REF(int, http.idle_timeout_ms), 10, 3600000}},
      {"http.write_timeout_ms", int_spec{STAMPEDE_REF(int, http.write_timeout_ms), 10, 600000}},
      {"http.max_header_bytes", int_spec{STAMPEDE_REF(int, http.max_header_bytes), 256, 1048576}},
      {"http.max_target_bytes", int_spec{STAMPEDE_REF(int, http.max_target_bytes), 16, 65536}},
      {"http.max_body_bytes", int_spec{STAMPEDE_REF(int, http.max_body_bytes), 0, 67108864}},
      {"http.max_connections", int_spec{STAMPEDE_REF(int, http.max_connections), 1, 1000000}},
      {"thread_per_request.max_threads",
       int_spec{STAMPEDE_REF(int, thread_per_request.max_threads), 1, 30000}},
      {"thread_per_request.cancel_on_disconnect",
       bool_spec{STAMPEDE_REF(bool, thread_per_request.cancel_on_disconnect)}},
      {"bounded.workers", int_spec{STAMPEDE_REF(int, bounded.workers), 1, 1024}},
      {"bounded.queue_capacity", int_spec{STAMPEDE_REF(int, bounded.queue_capacity), 0, 1000000}},
      {"bounded.queue_timeout_ms",
       int_spec{STAMPEDE_REF(int, bounded.queue_timeout_ms), 1, 3600000}},
      {"bounded.cancel_on_disconnect", bool_spec{STAMPEDE_REF(bool, bounded.cancel_on_disconnect)}},
      {"bounded.fanout_limit", int_spec{STAMPEDE_REF(int, bounded.fanout_limit), 1, 1024}},
      {"bounded.retry_after_s", int_spec{STAMPEDE_REF(int, bounded.retry_after_s), 0, 3600}},
      {"bounded.queue", choice_spec{STAMPEDE_REF(std::string, bounded.queue), {"fifo", "codel"}}},
      {"bounded.codel_target_ms", int_spec{STAMPEDE_REF(int, bounded.codel_target_ms), 1, 60000}},
      {"bounded.codel_interval_ms",
       int_spec{STAMPEDE_REF(int, bounded.codel_interval_ms), 1, 600000}},
      {"coroutine.threads", int_spec{STAMPEDE_REF(int, coroutine.threads), 0, 256}},
      {"coroutine.max_tasks", int_spec{STAMPEDE_REF(int, coroutine.max_tasks), 0, 10000000}},
      {"coroutine.cancel_on_disconnect",
       bool_spec{STAMPEDE_REF(bool, coroutine.cancel_on_disconnect)}},
      {"coroutine.fanout_limit", int_spec{STAMPEDE_REF(int, coroutine.fanout_limit), 0, 1024}},
      {"coroutine.retry_after_s", int_spec{STAMPEDE_REF(int, coroutine.retry_after_s), 0, 3600}},
      {"limiter.algorithm", choice_spec{STAMPEDE_REF(std::string, limiter.algorithm),
                                        {"none", "aimd", "gradient2", "vegas"}}},
      {"limiter.initial", int_spec{STAMPEDE_REF(int, limiter.initial), 1, 100000}},
      {"limiter.sheddable_share", int_spec{STAMPEDE_REF(int, limiter.sheddable_share), 0, 100}},
      {"limiter.sheddable_plus_share",
       int_spec{STAMPEDE_REF(int, limiter.sheddable_plus_share), 0, 100}},
      {"limiter.critical_share", int_spec{STAMPEDE_REF(int, limiter.critical_share), 0, 100}},
      {"limiter.min", int_spec{STAMPEDE_REF(int, limiter.min), 1, 100000}},
      {"limiter.max", int_spec{STAMPEDE_REF(int, limiter.max), 1, 100000}},
      {"limiter.window_ms", int_spec{STAMPEDE_REF(int, limiter.window_ms), 0, 60000}},
      {"limiter.window_samples", int_spec{STAMPEDE_REF(int, limiter.window_samples), 1, 100000}},
      {"limiter.aimd_backoff_ratio",
       double_spec{STAMPEDE_REF(double, limiter.aimd_backoff_ratio), 0.5, 0.999}},
      {"limiter.aimd_timeout_ms", int_spec{STAMPEDE_REF(int, limiter.aimd_timeout_ms), 1, 600000}},
      {"limiter.gradient2_smoothing",
       double_spec{STAMPEDE_REF(double, limiter.gradient2_smoothing), 0.01, 1.0}},
      {"limiter.gradient2_tolerance",
       double_spec{STAMPEDE_REF(double, limiter.gradient2_tolerance), 1.0, 10.0}},
      {"limiter.gradient2_long_window",
       int_spec{STAMPEDE_REF(int, limiter.gradient2_long_window), 10, 100000}},
      {"limiter.gradient2_queue", int_spec{STAMPEDE_REF(int, limiter.gradient2_queue), 0, 1000}},
      {"limiter.vegas_alpha", double_spec{STAMPEDE_REF(double, limiter.vegas_alpha), 0.1, 100.0}},
      {"limiter.vegas_beta", double_spec{STAMPEDE_REF(double, limiter.vegas_beta), 0.1, 100.0}},
      {"limiter.vegas_probe", int_spec{STAMPEDE_REF(int, limiter.vegas_probe), 1, 100000}},
      {"limiter.vegas_smoothing",
       double_spec{STAMPEDE_REF(double, limiter.vegas_smoothing), 0.01, 1.0}},
      {"labs.stock", int_spec{STAMPEDE_REF(int, labs.stock), 0, 1000000}},
      {"labs.wait_ms", int_spec{STAMPEDE_REF(int, labs.wait_ms), 1, 60000}},
      {"labs.max_leaked", int_spec{STAMPEDE_REF(int, labs.max_leaked), 0, 100000}},
      {"labs.deadlock_detect_ms", int_spec{STAMPEDE_REF(int, labs.deadlock_detect_ms), 10, 600000}},
      {"labs.deadlock_break", bool_spec{STAMPEDE_REF(bool, labs.deadlock_break)}},
      {"labs.cache_entries", int_spec{STAMPEDE_REF(int, labs.cache_entries), 1, 100000}},
      {"labs.cleanup_queue", int_spec{STAMPEDE_REF(int, labs.cleanup_queue), 1, 100000}},
      {"labs.max_cleanups", int_spec{STAMPEDE_REF(int, labs.max_cleanups), 1, 100000}},
      {"shutdown.drain_timeout_ms",
       int_spec{STAMPEDE_REF(int, shutdown.drain_timeout_ms), 0, 600000}},
      {"supervisor.memory_limit_mb",
       int_spec{STAMPEDE_REF(int, supervisor.memory_limit_mb), 0, 1048576}},
      {"supervisor.restart_backoff_ms",
       int_spec{STAMPEDE_REF(int, supervisor.restart_backoff_ms), 0, 600000}},
      {"supervisor.restart_backoff_max_ms",
       int_spec{STAMPEDE_REF(int, supervisor.restart_backoff_max_ms), 0, 3600000}},
      {"log.level", choice_spec{STAMPEDE_REF(std::string, log.level),
                                {"trace", "debug", "info", "warn", "error", "critical", "off"}}},
      {"reload.watch", bool_spec{STAMPEDE_REF(bool, reload.watch)}},
      {"reload.poll_ms", int_spec{STAMPEDE_REF(int, reload.poll_ms), 50, 60000}},
  };
  return table;
}

#undef STAMPEDE_REF

const key_spec* find(std::string_view key) {
  for (const auto& s : specs()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

bool is_section(std::string_view prefix) {
  return std::any_of(specs().begin(), specs().end(), [&](const key_spec& s) {
    return s.key.size() > prefix.size() && s.key.substr(0, prefix.size()) == prefix &&
           s.key[prefix.size()] == '.';
  });
}

}  // namespace stampede::keys
