#include "handlers/router.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <charconv>
#include <span>
#include <string>

#include "handlers/labs/variants.hpp"

namespace stampede {

namespace {

// Parses a decimal integer in [lo, hi]; nullopt for anything else (signs, spaces, overflow).
std::optional<int> parse_int(std::string_view t, int lo, int hi) {
  if (t.empty() || t.size() > 10) return std::nullopt;
  long v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || v < lo || v > hi) return std::nullopt;
  return static_cast<int>(v);
}

std::optional<lab_kind> lab_of(std::string_view path) {
  for (auto lab : all_labs) {
    if (path.size() == 5 + to_string(lab).size() && path.starts_with("/lab/") &&
        path.substr(5) == to_string(lab)) {
      return lab;
    }
  }
  return std::nullopt;
}

/// Which parameters each lab takes.
bool lab_takes(lab_kind lab, std::string_view key) {
  if (key == "variant") return true;
  switch (lab) {
    case lab_kind::counter:
      return key == "n";
    case lab_kind::reserve:
      return false;
    case lab_kind::leak:
      return key == "ms" || key == "kb";
    case lab_kind::transfer:
      return key == "ms" || key == "from" || key == "to";
    case lab_kind::nested:
    case lab_kind::cpu_fanout:
      return key == "ms" || key == "n";
    case lab_kind::lock:
    case lab_kind::cache:
      return key == "ms";
  }
  return false;
}

std::string one_of(std::span<const std::string_view> names) {
  std::string s;
  for (auto n : names) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

route_result fail(handler_id h, int status, std::string message,
                  std::string_view reason = "bad_parameter") {
  route_result r;
  r.handler = h;
  r.error = route_error{status, std::move(message), reason, {}};
  return r;
}

}  // namespace

route_result route(std::string_view method, std::string_view target, const work_limits& limits) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return fail(handler_id::other, 400, "malformed request target", "bad_target");
  boost::urls::url_view url = *parsed;
  std::string path = url.path();

  route_result r;
  if (path == "/work/io") {
    r.handler = handler_id::io;
  } else if (path == "/work/cpu") {
    r.handler = handler_id::cpu;
  } else if (path == "/work/fanout") {
    r.handler = handler_id::fanout;
  } else if (path == "/healthz") {
    r.handler = handler_id::healthz;
  } else if (auto lab = lab_of(path)) {
    r.handler = handler_id::lab;
    r.params.lab = *lab;
  } else {
    return fail(handler_id::other, 404, "no such endpoint: " + path, "not_found");
  }
  if (method != "GET" && method != "HEAD") {
    auto f = fail(r.handler, 405, "method not allowed; use GET", "method_not_allowed");
    f.error->allow = "GET, HEAD";
    return f;
  }

  const bool is_lab = r.handler == handler_id::lab;
  const lab_kind lab = r.params.lab;
  bool seen_ms = false, seen_n = false, seen_parallel = false, seen_kb = false;
  bool seen_variant = false, seen_from = false, seen_to = false;
  for (auto param : url.params()) {
    const std::string& key = param.key;
    const std::string& value = param.value;
    auto once = [&](bool& seen) {
      if (seen) return false;
      seen = true;
      return true;
    };
    // A whole-number parameter given at most once, in [lo, hi] (hi from `limit_key`).
    auto number = [&](bool& seen, int lo, int hi, const char* limit_key,
                      int& out) -> std::optional<route_result> {
      if (!once(seen)) return fail(r.handler, 400, "parameter " + key + " given twice");
      auto v = parse_int(value, lo, hi);
      if (!v) {
        return fail(r.handler, 400,
                    key + " must be a whole number from " + std::to_string(lo) + " to " +
                        std::to_string(hi) + " (" + limit_key + ")");
      }
      out = *v;
      return std::nullopt;
    };
    // One of `names` (a variant, an account), given at most once.
    auto choice = [&](bool& seen, std::span<const std::string_view> names,
                      std::uint8_t& out) -> std::optional<route_result> {
      if (!once(seen)) return fail(r.handler, 400, "parameter " + key + " given twice");
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (value == names[i]) {
          out = static_cast<std::uint8_t>(i);
          return std::nullopt;
        }
      }
      return fail(r.handler, 400, key + " must be one of: " + one_of(names));
    };
    static constexpr std::string_view account_names[] = {"a", "b", "c", "d"};
    std::optional<route_result> bad;
    if (is_lab && !lab_takes(lab, key)) {
      return fail(r.handler, 400, "unknown parameter: " + key);
    } else if (is_lab && key == "variant") {
      bad = choice(seen_variant, lab_variants(lab), r.params.variant);
    } else if (is_lab && key == "from") {
      bad = choice(seen_from, account_names, r.params.from);
    } else if (is_lab && key == "to") {
      bad = choice(seen_to, account_names, r.params.to);
    } else if (is_lab && key == "n") {
      bad = lab == lab_kind::counter
                ? number(seen_n, 1, 10000, "the counter lab's limit", r.params.n)
                : number(seen_n, 1, limits.max_fanout, "limits.max_fanout", r.params.n);
    } else if (key == "ms" && r.handler != handler_id::healthz) {
      bad = number(seen_ms, 0, limits.max_ms, "limits.max_ms", r.params.ms);
    } else if (key == "kb" && r.handler != handler_id::healthz) {
      bad = number(seen_kb, 0, limits.max_kb, "limits.max_kb", r.params.kb);
    } else if (key == "n" && r.handler == handler_id::fanout) {
      bad = number(seen_n, 1, limits.max_fanout, "limits.max_fanout", r.params.n);
    } else if (key == "parallel" && r.handler == handler_id::fanout) {
      if (!once(seen_parallel)) return fail(r.handler, 400, "parameter parallel given twice");
      if (value != "0" && value != "1") return fail(r.handler, 400, "parallel must be 0 or 1");
      r.params.parallel = value == "1";
    } else {
      return fail(r.handler, 400, "unknown parameter: " + key);
    }
    if (bad) return std::move(*bad);
  }
  if (is_lab) {
    if (!seen_variant) {
      return fail(r.handler, 400,
                  "parameter variant is required: one of " + one_of(lab_variants(lab)));
    }
    if (lab == lab_kind::transfer && (!seen_from || !seen_to)) {
      return fail(r.handler, 400,
                  std::string("parameter ") + (seen_from ? "to" : "from") +
                      " is required: one of a, b, c, d");
    }
    if (lab == lab_kind::transfer && r.params.from == r.params.to) {
      return fail(r.handler, 400, "from and to must be different accounts");
    }
  }
  const bool one_after_another = (r.handler == handler_id::fanout && !r.params.parallel) ||
                                 (is_lab && lab == lab_kind::cpu_fanout);
  if (one_after_another &&
      static_cast<long>(r.params.n) * r.params.ms > static_cast<long>(limits.max_ms)) {
    return fail(r.handler, 400, "n*ms exceeds limits.max_ms");
  }
  return r;
}

std::optional<route_error> apply_deadline(std::string_view value, int max_ms,
                                          std::chrono::steady_clock::time_point now,
                                          work_params& p) {
  auto ms = parse_int(value, 0, max_ms);
  if (!ms) {
    return route_error{400,
                       std::string(deadline_header) + " must be whole milliseconds from 0 to " +
                           std::to_string(max_ms),
                       "bad_parameter",
                       {}};
  }
  p.deadline = now + std::chrono::milliseconds(*ms);
  return std::nullopt;
}

// The names and error answers the router and its callers share: the fuzz build (clang 14
// with sanitizers, which cannot compile coroutines) links this file alone of handlers/.
std::string_view to_string(criticality c) {
  switch (c) {
    case criticality::sheddable:
      return "SHEDDABLE";
    case criticality::sheddable_plus:
      return "SHEDDABLE_PLUS";
    case criticality::critical:
      return "CRITICAL";
    case criticality::critical_plus:
      return "CRITICAL_PLUS";
  }
  return "CRITICAL";
}

std::optional<route_error> apply_criticality(std::string_view value, work_params& p) {
  for (int i = 0; i < criticality_count; ++i) {
    const auto c = static_cast<criticality>(i);
    const std::string_view name = to_string(c);
    if (value.size() == name.size() &&
        std::equal(value.begin(), value.end(), name.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        })) {
      p.crit = c;
      return std::nullopt;
    }
  }
  return route_error{400,
                     std::string(criticality_header) +
                         " must be one of CRITICAL_PLUS, CRITICAL, SHEDDABLE_PLUS, SHEDDABLE",
                     "bad_parameter",
                     {}};
}

std::string_view to_string(handler_id h) {
  switch (h) {
    case handler_id::io:
      return "io";
    case handler_id::cpu:
      return "cpu";
    case handler_id::fanout:
      return "fanout";
    case handler_id::healthz:
      return "healthz";
    case handler_id::lab:
      return "lab";
    case handler_id::other:
      return "other";
  }
  return "other";
}

response error_response(int status, std::string_view message, std::string_view reason,
                        std::string_view mode) {
  response r;
  r.status = status;
  r.body = boost::json::serialize(boost::json::object{
      {"error", message}, {"status", status}, {"reason", reason}, {"mode", mode}});
  return r;
}

}  // namespace stampede
