#include "server/request_checks.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <string_view>

namespace stampede {

header_scan scan_header(std::string_view bytes) {
  header_scan out;
  bool line_start = true;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c == '\0') return {header_scan::state::bad, 0};  // NUL byte in the header
    if (c == '\n') return {header_scan::state::bad, 0};  // bare LF in the header
    if (c == '\r') {
      if (i + 1 == bytes.size()) return out;                          // need the next byte
      if (bytes[i + 1] != '\n') return {header_scan::state::bad, 0};  // bare CR in the header
      if (line_start) {
        if (i == 0) return {header_scan::state::bad, 0};  // empty request line
        return {header_scan::state::complete, i + 2};
      }
      ++i;  // the LF
      line_start = true;
      continue;
    }
    if (line_start && (c == ' ' || c == '\t')) {
      return {header_scan::state::bad, 0};  // line starts with white space (obsolete folding)
    }
    line_start = false;
  }
  return out;
}

namespace http = boost::beast::http;

std::optional<read_status> framing_problem(const http_request& req, std::size_t max_target) {
  if (req.target().size() > max_target) return read_status::too_long_target;
  // Ambiguous framing is refused outright, not interpreted: no second request may hide in it.
  if (req.count(http::field::content_length) > 1) return read_status::bad_request;
  if (req.find(http::field::content_length) != req.end() &&
      req[http::field::content_length].find(',') != std::string_view::npos) {
    return read_status::bad_request;
  }
  if (auto n = req.count(http::field::transfer_encoding); n > 0) {
    if (n > 1 || req.version() < 11 || req[http::field::transfer_encoding] != "chunked") {
      return read_status::bad_request;
    }
  }
  auto hosts = req.count(http::field::host);
  if (hosts > 1 || (req.version() >= 11 && hosts == 0)) return read_status::bad_request;
  return std::nullopt;
}

refusal refusal_for(read_status s) {
  switch (s) {
    case read_status::timeout:
      return {408, "request not received in time", "request_timeout"};
    case read_status::too_long_target:
      return {414, "request target too long", "target_too_long"};
    case read_status::too_large_header:
      return {431, "request header too large", "header_too_large"};
    case read_status::too_large_body:
      return {413, "request body too large", "body_too_large"};
    default:
      return {400, "malformed request", "malformed_request"};
  }
}

request_reader::request_reader(std::uint32_t max_header_bytes, std::uint64_t max_body_bytes,
                               std::size_t max_target_bytes)
    : max_header_bytes_(max_header_bytes), max_target_bytes_(max_target_bytes) {
  parser_.header_limit(max_header_bytes);
  parser_.body_limit(max_body_bytes);
}

std::optional<read_status> request_reader::feed(boost::beast::flat_buffer& buffer) {
  if (!header_seen_) {
    // Look at the header's raw bytes before Beast does: Beast unfolds obsolete line folding
    // silently, and a request smuggled through folding must not pass.
    auto bytes = static_cast<const char*>(buffer.data().data());
    auto scan = scan_header(std::string_view(bytes, buffer.size()));
    if (scan.verdict == header_scan::state::bad) return read_status::bad_request;
    if (scan.verdict == header_scan::state::incomplete) {
      if (buffer.size() > max_header_bytes_) return read_status::too_large_header;
      return std::nullopt;
    }
    if (scan.length > max_header_bytes_) return read_status::too_large_header;
    header_seen_ = true;
  }
  boost::beast::error_code ec;
  while (buffer.size() > 0 && !parser_.is_done()) {
    auto used = parser_.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == http::error::need_more) return std::nullopt;
    if (ec == http::error::header_limit) return read_status::too_large_header;
    if (ec == http::error::body_limit) return read_status::too_large_body;
    if (ec) return read_status::bad_request;
    if (used == 0) break;
  }
  if (!parser_.is_done()) return std::nullopt;
  if (auto status = framing_problem(parser_.get(), max_target_bytes_)) return status;
  return read_status::ok;
}

}  // namespace stampede
