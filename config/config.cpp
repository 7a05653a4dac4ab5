#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <variant>

#include "config/http_url.hpp"

namespace stampede {

std::string_view to_string(mode_kind m) {
  switch (m) {
    case mode_kind::blocking:
      return "blocking";
    case mode_kind::thread_per_request:
      return "thread_per_request";
    case mode_kind::bounded:
      return "bounded";
    case mode_kind::coroutine:
      return "coroutine";
  }
  return "unknown";
}

std::optional<mode_kind> parse_mode(std::string_view text) {
  if (text == "blocking") return mode_kind::blocking;
  if (text == "thread_per_request" || text == "thread-per-request") {
    return mode_kind::thread_per_request;
  }
  if (text == "bounded") return mode_kind::bounded;
  if (text == "coroutine") return mode_kind::coroutine;
  return std::nullopt;
}

std::string to_string(const endpoint& e) {
  if (e.host.find(':') != std::string::npos) return "[" + e.host + "]:" + std::to_string(e.port);
  return e.host + ":" + std::to_string(e.port);
}

config_error::config_error(std::string where, std::string key, const std::string& what)
    : std::runtime_error(where + ": " + (key.empty() ? std::string() : key + ": ") + what),
      where_(std::move(where)),
      key_(std::move(key)) {}

namespace {

// One settable key: how to parse its text into the config, and how to show it.
struct int_spec {
  int& (*ref)(config&);
  long min;
  long max;
};
struct bool_spec {
  bool& (*ref)(config&);
};
struct string_spec {
  std::string& (*ref)(config&);
  bool secret;
  bool (*check)(std::string_view, std::string& why) = nullptr;  ///< null: any text
};
bool check_url(std::string_view t, std::string& why) {
  return t.empty() || parse_http_url(t, why).has_value();
}
struct endpoint_spec {
  endpoint& (*ref)(config&);
};
struct mode_spec {};
struct level_spec {
  std::string& (*ref)(config&);
};
using spec = std::variant<int_spec, bool_spec, string_spec, endpoint_spec, mode_spec, level_spec>;

struct key_spec {
  std::string_view key;
  spec how;
};

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
      {"coroutine.threads", int_spec{STAMPEDE_REF(int, coroutine.threads), 0, 256}},
      {"coroutine.max_tasks", int_spec{STAMPEDE_REF(int, coroutine.max_tasks), 0, 10000000}},
      {"coroutine.cancel_on_disconnect",
       bool_spec{STAMPEDE_REF(bool, coroutine.cancel_on_disconnect)}},
      {"coroutine.fanout_limit", int_spec{STAMPEDE_REF(int, coroutine.fanout_limit), 0, 1024}},
      {"coroutine.retry_after_s", int_spec{STAMPEDE_REF(int, coroutine.retry_after_s), 0, 3600}},
      {"labs.stock", int_spec{STAMPEDE_REF(int, labs.stock), 0, 1000000}},
      {"labs.wait_ms", int_spec{STAMPEDE_REF(int, labs.wait_ms), 1, 60000}},
      {"labs.max_leaked", int_spec{STAMPEDE_REF(int, labs.max_leaked), 0, 100000}},
      {"labs.deadlock_detect_ms", int_spec{STAMPEDE_REF(int, labs.deadlock_detect_ms), 10, 600000}},
      {"labs.deadlock_break", bool_spec{STAMPEDE_REF(bool, labs.deadlock_break)}},
      {"shutdown.drain_timeout_ms",
       int_spec{STAMPEDE_REF(int, shutdown.drain_timeout_ms), 0, 600000}},
      {"log.level", level_spec{STAMPEDE_REF(std::string, log.level)}},
      {"reload.watch", bool_spec{STAMPEDE_REF(bool, reload.watch)}},
      {"reload.poll_ms", int_spec{STAMPEDE_REF(int, reload.poll_ms), 50, 60000}},
  };
  return table;
}

#undef STAMPEDE_REF

const key_spec* find_spec(std::string_view key) {
  for (const auto& s : specs()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

bool parse_bool(std::string_view t, bool& out) {
  if (t == "true" || t == "yes" || t == "on" || t == "1") return out = true, true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return out = false, true;
  return false;
}

bool parse_port(std::string_view t, std::uint16_t& out) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || t.empty() || v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

bool parse_endpoint(std::string_view t, endpoint& out) {
  std::string_view host, port;
  if (!t.empty() && t.front() == '[') {
    auto close = t.find("]:");
    if (close == std::string_view::npos) return false;
    host = t.substr(1, close - 1);
    port = t.substr(close + 2);
  } else {
    auto colon = t.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = t.substr(0, colon);
    port = t.substr(colon + 1);
    if (host == "localhost") host = "127.0.0.1";
  }
  if (host.empty()) return false;
  // An IP literal only: names would need a resolver and make binding ambiguous.
  bool ok = std::all_of(host.begin(), host.end(), [](char ch) {
    return std::isxdigit(static_cast<unsigned char>(ch)) || ch == '.' || ch == ':';
  });
  if (!ok) return false;
  endpoint e;
  e.host = std::string(host);
  if (!parse_port(port, e.port)) return false;
  out = e;
  return true;
}

// Applies `text` to key `s` of `c`; returns an error message, empty on success.
std::string apply(const key_spec& s, config& c, const std::string& text) {
  return std::visit(
      [&](const auto& how) -> std::string {
        using T = std::decay_t<decltype(how)>;
        if constexpr (std::is_same_v<T, int_spec>) {
          long v = 0;
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
          if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < how.min ||
              v > how.max) {
            return "must be a whole number from " + std::to_string(how.min) + " to " +
                   std::to_string(how.max) + " (got '" + text + "')";
          }
          how.ref(c) = static_cast<int>(v);
        } else if constexpr (std::is_same_v<T, bool_spec>) {
          if (!parse_bool(text, how.ref(c))) return "must be true or false (got '" + text + "')";
        } else if constexpr (std::is_same_v<T, string_spec>) {
          std::string why;
          if (how.check && !how.check(text, why)) return why + " (got '" + text + "')";
          how.ref(c) = text;
        } else if constexpr (std::is_same_v<T, endpoint_spec>) {
          if (!parse_endpoint(text, how.ref(c))) {
            return "must be IP:PORT or [IPv6]:PORT (got '" + text + "')";
          }
        } else if constexpr (std::is_same_v<T, mode_spec>) {
          auto m = parse_mode(text);
          if (!m)
            return "must be blocking, thread_per_request, bounded or coroutine (got '" + text +
                   "')";
          c.mode = *m;
        } else if constexpr (std::is_same_v<T, level_spec>) {
          static const char* levels[] = {"trace", "debug",    "info", "warn",
                                         "error", "critical", "off"};
          if (std::find(std::begin(levels), std::end(levels), text) == std::end(levels)) {
            return "must be one of trace, debug, info, warn, error, critical, off (got '" + text +
                   "')";
          }
          how.ref(c) = text;
        }
        return {};
      },
      s.how);
}

std::string where(const std::string& file, const YAML::Mark& mark) {
  if (mark.is_null()) return file;
  return file + ":" + std::to_string(mark.line + 1);
}

void walk(const YAML::Node& node, const std::string& prefix, const std::string& file, config& c) {
  // Copies, not references: a yaml-cpp iterator yields a temporary pair.
  for (const auto& entry : node) {
    const YAML::Node k = entry.first;
    const YAML::Node v = entry.second;
    if (!k.IsScalar())
      throw config_error(where(file, k.Mark()), prefix, "keys must be plain names");
    std::string key = prefix.empty() ? k.Scalar() : prefix + "." + k.Scalar();
    if (v.IsMap()) {
      bool is_section = std::any_of(specs().begin(), specs().end(), [&](const key_spec& s) {
        return s.key.substr(0, key.size() + 1) == key + ".";
      });
      if (!is_section) throw config_error(where(file, k.Mark()), key, "unknown key");
      walk(v, key, file, c);
      continue;
    }
    const key_spec* s = find_spec(key);
    if (!s) {
      bool is_section = std::any_of(specs().begin(), specs().end(), [&](const key_spec& sp) {
        return sp.key.substr(0, key.size() + 1) == key + ".";
      });
      throw config_error(where(file, k.Mark()), key,
                         is_section ? "is a section and needs keys under it" : "unknown key");
    }
    if (!v.IsScalar()) {
      throw config_error(where(file, v.Mark()), key, "must be a single value, not a list or null");
    }
    if (auto err = apply(*s, c, v.Scalar()); !err.empty()) {
      throw config_error(where(file, v.Mark()), key, err);
    }
  }
}

bool is_loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1";
}

void cross_check(const config& c, const std::string& file) {
  if (c.work.request_kb > c.limits.max_kb) {
    throw config_error(file, "work.request_kb",
                       "must not exceed limits.max_kb (" + std::to_string(c.work.request_kb) +
                           " > " + std::to_string(c.limits.max_kb) + ")");
  }
  if (c.main.listen.port != 0 && c.main.listen == c.admin.listen) {
    throw config_error(file, "admin.listen", "must differ from main.listen");
  }
  if (!is_loopback(c.admin.listen.host) && c.admin.token.empty()) {
    throw config_error(file, "admin.token",
                       "must be set when admin.listen is not a loopback address (" +
                           to_string(c.admin.listen) + ")");
  }
}

}  // namespace

const std::vector<std::string>& config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const auto& s : specs()) k.emplace_back(s.key);
    return k;
  }();
  return keys;
}

std::string env_name(std::string_view key) {
  std::string name = "STAMPEDE_";
  for (char ch : key) {
    name += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return name;
}

std::vector<override_value> env_overrides() {
  std::vector<override_value> out;
  for (const auto& key : config_keys()) {
    std::string name = env_name(key);
    if (const char* v = std::getenv(name.c_str())) out.push_back({key, v, "env " + name});
  }
  return out;
}

config parse_config(std::string_view yaml_text, const std::string& file_name,
                    const std::vector<override_value>& overrides) {
  config c;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    throw config_error(where(file_name, e.mark), "", "YAML syntax error: " + e.msg);
  }
  if (root.IsDefined() && !root.IsNull()) {
    if (!root.IsMap()) throw config_error(where(file_name, root.Mark()), "", "must be a mapping");
    walk(root, "", file_name, c);
  }
  for (const auto& o : overrides) {
    const key_spec* s = find_spec(o.key);
    if (!s) throw config_error(o.source, o.key, "unknown key");
    if (auto err = apply(*s, c, o.value); !err.empty()) throw config_error(o.source, o.key, err);
  }
  cross_check(c, file_name);
  return c;
}

config load_config(const std::string& path, const std::vector<override_value>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path, "", "cannot open the config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

boost::json::value to_json(const config& c) {
  config copy = c;
  boost::json::object root;
  for (const auto& s : specs()) {
    boost::json::value v = std::visit(
        [&](const auto& how) -> boost::json::value {
          using T = std::decay_t<decltype(how)>;
          if constexpr (std::is_same_v<T, int_spec>) return how.ref(copy);
          if constexpr (std::is_same_v<T, bool_spec>) return how.ref(copy);
          if constexpr (std::is_same_v<T, string_spec>) {
            if (how.secret) return how.ref(copy).empty() ? "" : "(set)";
            return boost::json::string(how.ref(copy));
          }
          if constexpr (std::is_same_v<T, endpoint_spec>) {
            return boost::json::string(to_string(how.ref(copy)));
          }
          if constexpr (std::is_same_v<T, mode_spec>) return boost::json::string(to_string(c.mode));
          if constexpr (std::is_same_v<T, level_spec>) return boost::json::string(how.ref(copy));
        },
        s.how);
    // Nest "a.b" as {"a": {"b": v}}.
    auto dot = s.key.find('.');
    if (dot == std::string_view::npos) {
      root[s.key] = std::move(v);
    } else {
      auto& section = root[s.key.substr(0, dot)];
      if (!section.is_object()) section = boost::json::object();
      section.as_object()[s.key.substr(dot + 1)] = std::move(v);
    }
  }
  return root;
}

std::vector<std::string> restart_keys_changed(const config& a, const config& b) {
  std::vector<std::string> out;
  if (!(a.main.listen == b.main.listen)) out.emplace_back("main.listen");
  if (a.main.io_threads != b.main.io_threads) out.emplace_back("main.io_threads");
  if (a.main.backlog != b.main.backlog) out.emplace_back("main.backlog");
  if (!(a.admin.listen == b.admin.listen)) out.emplace_back("admin.listen");
  if (a.downstream.url != b.downstream.url) out.emplace_back("downstream.url");
  return out;
}

}  // namespace stampede
