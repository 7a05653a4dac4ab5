#pragma once
/// \file The memory cgroup this process is in: its limit, and how many times the kernel's OOM
/// killer has killed a process in it. A supervisor that restarts the server in the same cgroup
/// (scripts/serve, the load-test driver, a container's own init) keeps that count, so the
/// server itself knows how often it was killed. The parsers take text, for tests.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stampede {

/// Where this process's memory cgroup may be, from a /proc/self/cgroup text, under `root`
/// (/sys/fs/cgroup): the v2 unified entry first, then the v1 memory controller's. A hybrid
/// host lists both, with the memory controller on v1 only, so the caller takes the first
/// whose files exist.
struct memory_cgroup {
  std::string dir;
  bool v2 = false;
  std::string limit_file() const;   ///< memory.max or memory.limit_in_bytes
  std::string events_file() const;  ///< memory.events or memory.oom_control
};
std::vector<memory_cgroup> find_memory_cgroups(std::string_view proc_self_cgroup,
                                               std::string_view root);

/// A limit file's text as bytes: nullopt for "max" or a v1 value meaning no limit.
std::optional<double> parse_memory_limit(std::string_view text);

/// The "oom_kill N" line of memory.events (v2) or memory.oom_control (v1).
std::optional<double> parse_oom_kills(std::string_view text);

/// One reading of this process's memory cgroup; nullopt fields where there is none.
struct memory_cgroup_reading {
  std::optional<double> limit_bytes;
  std::optional<double> oom_kills;
};
memory_cgroup_reading read_memory_cgroup();

}  // namespace stampede
