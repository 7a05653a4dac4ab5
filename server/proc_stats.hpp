#pragma once
/// \file Reads this process's resource use from /proc (prometheus-cpp has no process
/// collector). The parsers take text so they can be tested on recorded samples.

#include <optional>
#include <string_view>

namespace stampede {

/// One reading of the process.
struct proc_sample {
  double cpu_seconds = 0;         ///< user + system CPU time
  double resident_bytes = 0;      ///< RSS
  double virtual_bytes = 0;       ///< address space size
  double start_time_seconds = 0;  ///< since the Unix epoch
  int threads = 0;                ///< OS threads of the process now
  int open_fds = 0;
  double max_fds = 0;  ///< soft limit on open files
};

/// Fields of /proc/<pid>/stat that we use, converted with the given system constants.
/// Returns nullopt on malformed text. `boot_time` is /proc/stat's btime.
std::optional<proc_sample> parse_proc_stat(std::string_view stat, long clock_ticks, long page_size,
                                           double boot_time);

/// /proc/stat's "btime" line; nullopt if absent.
std::optional<double> parse_boot_time(std::string_view proc_stat);

/// The soft "Max open files" limit of /proc/<pid>/limits; nullopt if absent or malformed.
std::optional<double> parse_max_open_files(std::string_view limits);

/// Reads /proc/self/{stat,limits,fd} and /proc/stat now. nullopt when /proc is unreadable.
std::optional<proc_sample> read_proc_self();

}  // namespace stampede
