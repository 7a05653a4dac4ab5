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

#include "config/keys.hpp"

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

using namespace keys;

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

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
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
        } else if constexpr (std::is_same_v<T, double_spec>) {
          double v = 0;
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
          if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < how.min ||
              v > how.max) {
            return "must be a number from " + format_number(how.min) + " to " +
                   format_number(how.max) + " (got '" + text + "')";
          }
          how.ref(c) = v;
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
        } else if constexpr (std::is_same_v<T, choice_spec>) {
          if (std::find(how.choices.begin(), how.choices.end(), text) == how.choices.end()) {
            std::string list;
            for (auto ch : how.choices) list += (list.empty() ? "" : ", ") + std::string(ch);
            return "must be one of " + list + " (got '" + text + "')";
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

// What the file set, key by key, for the sources and the masked keys.
struct file_entry {
  std::string key;
  std::string value;
  std::string where;
};

void walk(const YAML::Node& node, const std::string& prefix, const std::string& file, config& c,
          std::vector<file_entry>& seen) {
  // Copies, not references: a yaml-cpp iterator yields a temporary pair.
  for (const auto& entry : node) {
    const YAML::Node k = entry.first;
    const YAML::Node v = entry.second;
    if (!k.IsScalar())
      throw config_error(where(file, k.Mark()), prefix, "keys must be plain names");
    std::string key = prefix.empty() ? k.Scalar() : prefix + "." + k.Scalar();
    if (v.IsMap()) {
      if (!keys::is_section(key)) throw config_error(where(file, k.Mark()), key, "unknown key");
      walk(v, key, file, c, seen);
      continue;
    }
    const key_spec* s = keys::find(key);
    if (!s) {
      throw config_error(
          where(file, k.Mark()), key,
          keys::is_section(key) ? "is a section and needs keys under it" : "unknown key");
    }
    if (!v.IsScalar()) {
      throw config_error(where(file, v.Mark()), key, "must be a single value, not a list or null");
    }
    if (auto err = apply(*s, c, v.Scalar()); !err.empty()) {
      throw config_error(where(file, v.Mark()), key, err);
    }
    seen.push_back({key, v.Scalar(), where(file, v.Mark())});
  }
}

// `key`'s value in `c` as JSON (secrets masked).
boost::json::value value_of(const key_spec& s, const config& c) {
  // The table's accessors take a mutable config (apply writes through them); here they only
  // read, so no copy of the whole config is made per key.
  config& copy = const_cast<config&>(c);
  return std::visit(
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
        if constexpr (std::is_same_v<T, double_spec>) return how.ref(copy);
        if constexpr (std::is_same_v<T, choice_spec>) return boost::json::string(how.ref(copy));
      },
      s.how);
}

void set_source(config& c, std::string_view key, std::string source) {
  for (auto& [k, v] : c.sources) {
    if (k == key) {
      v = std::move(source);
      return;
    }
  }
  c.sources.emplace_back(std::string(key), std::move(source));
}

bool is_loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1";
}

// Where `key` was set (file:line, or the flag or variable), for an error that two keys make:
// the file alone when it was left at its default.
std::string set_at(const config& c, std::string_view key, const std::string& file) {
  for (const auto& [k, where] : c.sources) {
    if (k == key) return where;
  }
  return file;
}

void cross_check(const config& c, const std::string& file) {
  if (c.work.request_kb > c.limits.max_kb) {
    throw config_error(set_at(c, "work.request_kb", file), "work.request_kb",
                       "must not exceed limits.max_kb (" + std::to_string(c.work.request_kb) +
                           " > " + std::to_string(c.limits.max_kb) + ")");
  }
  if (c.limiter.min > c.limiter.max) {
    throw config_error(set_at(c, "limiter.min", file), "limiter.min",
                       "must not exceed limiter.max (" + std::to_string(c.limiter.min) + " > " +
                           std::to_string(c.limiter.max) + ")");
  }
  if (c.limiter.initial < c.limiter.min || c.limiter.initial > c.limiter.max) {
    throw config_error(set_at(c, "limiter.initial", file), "limiter.initial",
                       "must lie from limiter.min to limiter.max (" +
                           std::to_string(c.limiter.min) + " to " + std::to_string(c.limiter.max) +
                           ", got " + std::to_string(c.limiter.initial) + ")");
  }
  if (c.limiter.sheddable_share > c.limiter.sheddable_plus_share) {
    throw config_error(set_at(c, "limiter.sheddable_share", file), "limiter.sheddable_share",
                       "must not exceed limiter.sheddable_plus_share: the lower criticality "
                       "is shed first");
  }
  if (c.limiter.sheddable_plus_share > c.limiter.critical_share) {
    throw config_error(set_at(c, "limiter.sheddable_plus_share", file),
                       "limiter.sheddable_plus_share",
                       "must not exceed limiter.critical_share: the lower criticality is shed "
                       "first");
  }
  if (c.limiter.vegas_alpha >= c.limiter.vegas_beta) {
    throw config_error(set_at(c, "limiter.vegas_alpha", file), "limiter.vegas_alpha",
                       "must be below limiter.vegas_beta");
  }
  if (c.main.listen.port != 0 && c.main.listen == c.admin.listen) {
    throw config_error(set_at(c, "admin.listen", file), "admin.listen",
                       "must differ from main.listen");
  }
  if (!is_loopback(c.admin.listen.host) && c.admin.token.empty()) {
    throw config_error(set_at(c, "admin.token", file), "admin.token",
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
  std::vector<file_entry> seen;
  if (root.IsDefined() && !root.IsNull()) {
    if (!root.IsMap()) throw config_error(where(file_name, root.Mark()), "", "must be a mapping");
    walk(root, "", file_name, c, seen);
  }
  for (const auto& e : seen) set_source(c, e.key, e.where);
  for (const auto& o : overrides) {
    const key_spec* s = keys::find(o.key);
    if (!s) throw config_error(o.source, o.key, "unknown key");
    auto before = value_of(*s, c);
    if (auto err = apply(*s, c, o.value); !err.empty()) throw config_error(o.source, o.key, err);
    auto in_file =
        std::find_if(seen.begin(), seen.end(), [&](const file_entry& e) { return e.key == o.key; });
    std::erase_if(c.masked, [&](const config::masked_key& m) { return m.key == o.key; });
    if (in_file != seen.end() && before != value_of(*s, c)) {
      c.masked.push_back({o.key, in_file->value, in_file->where, o.value, o.source});
    }
    set_source(c, o.key, o.source);
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
  boost::json::object root;
  boost::json::object sources;
  for (const auto& s : specs()) {
    boost::json::value v = value_of(s, c);
    sources[s.key] = c.source_of(s.key);
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
  root["sources"] = std::move(sources);
  return root;
}

std::string_view config::source_of(std::string_view key) const {
  for (const auto& [k, v] : sources) {
    if (k == key) return v;
  }
  return "default";
}

namespace {
// The keys a running server cannot change: its sockets, its threads, its dependency's address.
constexpr std::string_view restart_only_keys[] = {"main.listen", "main.io_threads", "main.backlog",
                                                  "admin.listen", "downstream.url"};
}  // namespace

std::vector<std::string> restart_keys_changed(const config& a, const config& b) {
  std::vector<std::string> out;
  for (auto key : restart_only_keys) {
    const key_spec* s = keys::find(key);
    if (value_of(*s, a) != value_of(*s, b)) out.emplace_back(key);
  }
  return out;
}

bool restart_only(std::string_view key) {
  return std::find(std::begin(restart_only_keys), std::end(restart_only_keys), key) !=
         std::end(restart_only_keys);
}

}  // namespace stampede
