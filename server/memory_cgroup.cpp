#include "server/memory_cgroup.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace stampede {

namespace {
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string join(std::string_view root, std::string_view sub, const std::string& path) {
  return std::string(root) + std::string(sub) + (path == "/" ? "" : path);
}
}  // namespace

std::string memory_cgroup::limit_file() const {
  return dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes");
}

std::string memory_cgroup::events_file() const {
  return dir + (v2 ? "/memory.events" : "/memory.oom_control");
}

std::vector<memory_cgroup> find_memory_cgroups(std::string_view proc_self_cgroup,
                                               std::string_view root) {
  std::vector<memory_cgroup> v2, v1;
  std::istringstream lines{std::string(proc_self_cgroup)};
  for (std::string line; std::getline(lines, line);) {
    // hierarchy-id:controllers:path
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos || b + 1 >= line.size()) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      v2.push_back({join(root, "", path), true});
    }
    std::istringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');) {
      if (c == "memory") v1.push_back({join(root, "/memory", path), false});
    }
  }
  v2.insert(v2.end(), v1.begin(), v1.end());
  return v2;
}

std::optional<double> parse_memory_limit(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.empty() || text == "max") return std::nullopt;
  try {
    double v = std::stod(std::string(text));
    // cgroup v1 says "no limit" with a page-rounded LONG_MAX.
    if (v <= 0 || v >= 9.0e18) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<double> parse_oom_kills(std::string_view text) {
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string key;
    double n = 0;
    if (words >> key >> n && key == "oom_kill") return n;
  }
  return std::nullopt;
}

memory_cgroup_reading read_memory_cgroup() {
  for (const auto& cg : find_memory_cgroups(read_file("/proc/self/cgroup"), "/sys/fs/cgroup")) {
    std::error_code ec;
    if (!std::filesystem::exists(cg.limit_file(), ec)) continue;
    return {parse_memory_limit(read_file(cg.limit_file())),
            parse_oom_kills(read_file(cg.events_file()))};
  }
  return {};
}

}  // namespace stampede
