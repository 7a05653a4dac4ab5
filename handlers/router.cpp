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
    if (key == "ms" && r.handler != handler_id::healthz) {
      if (!once(seen_ms)) return fail(r.handler, 400, "parameter ms given twice");
      auto v = parse_int(value, 0, limits.max_ms);
      if (!v) {
        return fail(r.handler, 400,
                    "ms must be a whole number from 0 to " + std::to_string(limits.max_ms) +
                        " (limits.max_ms)");
      }
      r.params.ms = *v;
    } else if (key == "kb" && r.handler != handler_id::healthz) {
      if (!once(seen_kb)) return fail(r.handler, 400, "parameter kb given twice");
      auto v = parse_int(value, 0, limits.max_kb);
      if (!v) {
        return fail(r.handler, 400,
                    "kb must be a whole number from 0 to " + std::to_string(limits.max_kb) +
                        " (limits.max_kb)");
      }
      r.params.kb = *v;
    } else if (key == "n" && r.handler == handler_id::fanout) {
      if (!once(seen_n)) return fail(r.handler, 400, "parameter n given twice");
      auto v = parse_int(value, 1, limits.max_fanout);
      if (!v) {
        return fail(r.handler, 400,
                    "n must be a whole number from 1 to " + std::to_string(limits.max_fanout) +
                        " (limits.max_fanout)");
      }
      r.params.n = *v;
    } else if (key == "parallel" && r.handler == handler_id::fanout) {
      if (!once(seen_parallel)) return fail(r.handler, 400, "parameter parallel given twice");
      if (value != "0" && value != "1") return fail(r.handler, 400, "parallel must be 0 or 1");
      r.params.parallel = value == "1";
    } else {
      return fail(r.handler, 400, "unknown parameter: " + key);
    }
  }
  if (r.handler == handler_id::fanout &&
      static_cast<long>(r.params.n) * r.params.ms > static_cast<long>(limits.max_ms) &&
      !r.params.parallel) {
    return fail(r.handler, 400, "n*ms exceeds limits.max_ms");
  }
  return r;
}

}  // namespace stampede
