#include "handlers/router.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <string>

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

route_result fail(handler_id h, int status, std::string message) {
  route_result r;
  r.handler = h;
  r.error = error_response(status, message);
  return r;
}

}  // namespace

route_result route(std::string_view method, std::string_view target, const work_limits& limits) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return fail(handler_id::other, 400, "malformed request target");
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
  } else {
    return fail(handler_id::other, 404, "no such endpoint: " + path);
  }
  if (method != "GET" && method != "HEAD") {
    auto f = fail(r.handler, 405, "method not allowed; use GET");
    f.error->headers.emplace_back("Allow", "GET, HEAD");
    return f;
  }

  bool seen_ms = false, seen_n = false, seen_parallel = false, seen_kb = false;
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
    std::optional<route_result> bad;
    if (key == "ms" && r.handler != handler_id::healthz) {
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
  if (r.handler == handler_id::fanout &&
      static_cast<long>(r.params.n) * r.params.ms > static_cast<long>(limits.max_ms) &&
      !r.params.parallel) {
    return fail(r.handler, 400, "n*ms exceeds limits.max_ms");
  }
  return r;
}

}  // namespace stampede
