// libFuzzer target: bytes → the raw-header scan → Beast's request parser → framing checks →
// router → validated handler parameters. Nothing here may crash, hang, or let through
// parameters outside their limits.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "handlers/router.hpp"
#include "server/header_scan.hpp"
#include "server/request_checks.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto scan = stampede::scan_header(bytes);
  if (scan.verdict != stampede::header_scan::state::complete) return 0;

  http::request_parser<http::string_body> parser;
  parser.header_limit(8192);
  parser.body_limit(65536);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!parser.is_done() && used < size) {
    auto n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) return 0;
  auto req = parser.release();
  if (stampede::framing_problem(req, 2048)) return 0;

  const stampede::work_limits limits{60000, 100};
  auto routed = stampede::route(req.method_string(), req.target(), limits);
  if (routed.error) {
    int s = routed.error->status;
    if (s < 400 || s >= 500) std::abort();
    return 0;
  }
  const auto& p = routed.params;
  if (p.ms < 0 || p.ms > limits.max_ms || p.n < 1 || p.n > limits.max_fanout) std::abort();
  if (routed.handler == stampede::handler_id::other) std::abort();
  return 0;
}
