#include "server/proc_stats.hpp"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace stampede {

namespace {

std::string slurp(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool to_double(std::string_view t, double& out) {
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size();
}

}  // namespace

std::optional<proc_sample> parse_proc_stat(std::string_view stat, long clock_ticks, long page_size,
                                           double boot_time) {
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string_view::npos || clock_ticks <= 0) return std::nullopt;
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    auto end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  auto field = [&](int n, double& out) { return to_double(fields[n - 3], out); };
  if (fields.size() < 22) return std::nullopt;
  double utime, stime, threads, starttime, vsize, rss;
  if (!field(14, utime) || !field(15, stime) || !field(20, threads) || !field(22, starttime) ||
      !field(23, vsize) || !field(24, rss)) {
    return std::nullopt;
  }
  proc_sample s;
  s.cpu_seconds = (utime + stime) / static_cast<double>(clock_ticks);
  s.threads = static_cast<int>(threads);
  s.start_time_seconds = boot_time + starttime / static_cast<double>(clock_ticks);
  s.virtual_bytes = vsize;
  s.resident_bytes = rss * static_cast<double>(page_size);
  return s;
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  auto pos = proc_stat.find("\nbtime ");
  if (pos == std::string_view::npos) return std::nullopt;
  auto rest = proc_stat.substr(pos + 7);
  double v = 0;
  if (!to_double(rest.substr(0, rest.find('\n')), v)) return std::nullopt;
  return v;
}

std::optional<double> parse_max_open_files(std::string_view limits) {
  auto pos = limits.find("Max open files");
  if (pos == std::string_view::npos) return std::nullopt;
  auto rest = limits.substr(pos + 14);
  auto start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) return std::nullopt;
  rest.remove_prefix(start);
  auto token = rest.substr(0, rest.find(' '));
  if (token == "unlimited") return -1;
  double v = 0;
  if (!to_double(token, v)) return std::nullopt;
  return v;
}

std::optional<proc_sample> read_proc_self() {
  static const long ticks = sysconf(_SC_CLK_TCK);
  static const long page = sysconf(_SC_PAGESIZE);
  static const double boot = parse_boot_time(slurp("/proc/stat")).value_or(0);
  auto s = parse_proc_stat(slurp("/proc/self/stat"), ticks, page, boot);
  if (!s) return std::nullopt;
  s->max_fds = parse_max_open_files(slurp("/proc/self/limits")).value_or(0);
  std::error_code ec;
  int fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  s->open_fds = fds > 0 ? fds - 1 : 0;  // less the directory handle used to count
  return s;
}

}  // namespace stampede
