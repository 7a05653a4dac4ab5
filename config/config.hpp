#pragma once
/// \file The effective configuration of stampede and its loader.
/// Knows nothing of Asio: a YAML file plus overrides (flags, environment) in,
/// a validated `config` out, or a `config_error` naming file, line and key.

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace stampede {

/// The four execution modes. The whole of each mode's policy lives in server/modes/.
enum class mode_kind { blocking, thread_per_request, bounded, coroutine };
inline constexpr int mode_count = 4;

std::string_view to_string(mode_kind m);
std::optional<mode_kind> parse_mode(std::string_view text);

/// A listen address: an IP literal and a port (0 = pick an ephemeral port).
struct endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  bool operator==(const endpoint&) const = default;
};
std::string to_string(const endpoint& e);

struct config {
  mode_kind mode = mode_kind::bounded;
  struct {
    endpoint listen{"127.0.0.1", 8080};
    int io_threads = 1;
    int backlog = 8192;
  } main;
  struct {
    endpoint listen{"127.0.0.1", 8081};
    std::string token;  ///< bearer token every admin request must carry when set; never shown
  } admin;
  struct {
    int max_ms = 60000;
    int max_fanout = 100;
    int max_kb = 4096;
  } limits;
  struct {
    int request_kb = 256;  ///< working set every /work/* request holds while it runs
  } work;
  struct {
    int capacity = 32;      ///< calls the dependency serves at once (url: pooled connections)
    std::string url;        ///< a real dependency over HTTP; empty: the in-process simulation
    int timeout_ms = 1000;  ///< url: an attempt's time, waiting for a connection included
    int retries = 0;        ///< url: further attempts after a retryable failure
    int retry_budget_percent = 0;     ///< url: retries at most this share of calls; 0 = no budget
    bool propagate_deadline = false;  ///< url: send the remaining deadline in a header
  } downstream;
  struct {
    int header_timeout_ms = 10000;
    int idle_timeout_ms = 30000;
    int write_timeout_ms = 10000;
    int max_header_bytes = 8192;
    int max_target_bytes = 2048;
    int max_body_bytes = 65536;
    int max_connections = 10000;
  } http;
  struct {
    int max_threads = 4000;
    bool cancel_on_disconnect = false;
  } thread_per_request;
  struct {
    int workers = 32;  ///< one per downstream slot (Little's law)
    int queue_capacity = 8;
    int queue_timeout_ms = 100;
    bool cancel_on_disconnect = true;
    int fanout_limit = 8;
    int retry_after_s = 1;
    std::string queue = "fifo";   ///< fifo | codel (served newest first while the queue stands)
    int codel_target_ms = 5;      ///< codel: the wait allowed once the queue is standing
    int codel_interval_ms = 100;  ///< codel: not empty for this long = a standing queue
  } bounded;
  struct {
    int threads = 0;    ///< threads the tasks run on; 0 = one per core
    int max_tasks = 0;  ///< live tasks at most (503 task_limit past it); 0 = unbounded
    bool cancel_on_disconnect = false;
    int fanout_limit = 0;  ///< fetches of one fan-out at once; 0 = a task per fetch
    int retry_after_s = 1;
  } coroutine;
  /// An adaptive concurrency limit in front of a mode's own limit, in every mode; the defaults
  /// are those of Netflix's concurrency-limits, but for min and the window.
  struct {
    std::string algorithm = "none";  ///< none | aimd | gradient2 | vegas
    int initial = 20;
    int min = 2;
    int max = 1000;
    /// N: one update per window of at least N ms and window_samples samples, from their mean
    /// RTT (Netflix's WindowedLimit). 0: every sample updates the limit (Netflix's
    /// SimpleLimiter), which overshoots: a change shows in the samples a request's time later.
    int window_ms = 100;
    int window_samples = 10;
    double aimd_backoff_ratio = 0.9;  ///< the limit's factor on a drop
    int aimd_timeout_ms = 5000;       ///< a sample slower than this counts as a drop
    double gradient2_smoothing = 0.2;
    double gradient2_tolerance = 1.5;  ///< short RTT may reach this × long RTT before shrinking
    int gradient2_long_window = 600;   ///< samples the long RTT averages over
    int gradient2_queue = 4;           ///< growth per update while RTT is flat
    double vegas_alpha = 3;            ///< grow while queued < alpha·log10(limit)
    double vegas_beta = 6;             ///< shrink while queued > beta·log10(limit)
    int vegas_probe = 30;              ///< re-measure the no-load RTT every ~probe × limit samples
    double vegas_smoothing = 1.0;
    /// Criticality: the percent of the limit in force that requests of each level may fill
    /// (CRITICAL_PLUS: all of it). Past its share a request is shed (503 shed), so that near
    /// the limit the lowest go first. sheddable <= sheddable_plus <= critical <= 100.
    int sheddable_share = 50;
    int sheddable_plus_share = 75;
    int critical_share = 100;
  } limiter;
  struct {
    int stock = 100;               ///< /lab/reserve: seats of each variant's stock at a reset
    int wait_ms = 50;              ///< /lab/leak: how long a request waits for its helper
    int max_leaked = 2000;         ///< /lab/leak: leaked helpers at most (503 leak_ceiling)
    int deadlock_detect_ms = 500;  ///< a lock cycle or a starved pool this old is reported
    bool deadlock_break = false;   ///< fail one victim per lock cycle found
    int cache_entries = 100;       ///< /lab/cache: entries before each put evicts one
    int cleanup_queue = 16;        ///< /lab/cache bounded: cleanups queued for the drainer
    int max_cleanups = 1000;       ///< /lab/cache unbounded: at most (503 cleanup_ceiling)
  } labs;
  struct {
    int drain_timeout_ms = 5000;
  } shutdown;
  /// How the server is meant to be run (scripts/serve, the demo, compose, Kubernetes): the
  /// server itself only compares the memory limit with the cgroup it finds itself in.
  struct {
    int memory_limit_mb = 192;  ///< 0 = none
    int restart_backoff_ms = 1000;
    int restart_backoff_max_ms = 8000;
  } supervisor;
  struct {
    std::string level = "info";
  } log;
  struct {
    bool watch = true;
    int poll_ms = 500;
  } reload;

  /// Where each key's value came from: "default", "FILE:LINE", "env STAMPEDE_...", "flag --x".
  std::vector<std::pair<std::string, std::string>> sources;
  /// A key the file sets to one value while a flag or variable overrides it with another.
  struct masked_key {
    std::string key;
    std::string file_value;
    std::string file_where;  ///< FILE:LINE
    std::string value;       ///< the override's
    std::string source;      ///< the override's: "env STAMPEDE_MODE", "flag --mode"
  };
  std::vector<masked_key> masked;
  /// The source of `key` ("default" if none was recorded).
  std::string_view source_of(std::string_view key) const;
};

/// A config that cannot be used. `where` is "file:line" or the flag / variable that set `key`.
class config_error : public std::runtime_error {
 public:
  config_error(std::string where, std::string key, const std::string& what);
  const std::string& where() const { return where_; }
  const std::string& key() const { return key_; }

 private:
  std::string where_;
  std::string key_;
};

/// One value set outside the file: `source` says where ("flag --workers", "env STAMPEDE_...").
struct override_value {
  std::string key;
  std::string value;
  std::string source;
};

/// Every settable key, dotted ("bounded.workers"), in file order.
const std::vector<std::string>& config_keys();

/// The environment variable that sets `key`: STAMPEDE_ + upper-cased key with '.' as '_'.
std::string env_name(std::string_view key);

/// Reads `STAMPEDE_*` variables for every key from the environment.
std::vector<override_value> env_overrides();

/// Parses YAML text (named `file_name` in errors), then applies `overrides` in order.
/// Throws config_error on a syntax error, an unknown key, or a bad value.
config parse_config(std::string_view yaml_text, const std::string& file_name,
                    const std::vector<override_value>& overrides = {});

/// Reads and parses a file; a missing or unreadable file is a config_error too.
config load_config(const std::string& path, const std::vector<override_value>& overrides = {});

/// The effective config as JSON (secrets masked), for the admin port's /config: the sections
/// and keys, and "sources", each dotted key's source.
boost::json::value to_json(const config& c);

/// Keys whose change needs a restart (listen addresses, I/O threads): differences between a and b.
std::vector<std::string> restart_keys_changed(const config& a, const config& b);

/// Whether a reload leaves `key` as it was until the next restart (listen addresses, threads).
bool restart_only(std::string_view key);

}  // namespace stampede
