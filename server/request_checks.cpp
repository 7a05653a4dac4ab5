#include "server/request_checks.hpp"

#include <boost/beast/http/field.hpp>

namespace stampede {

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

int status_for(read_status s) {
  switch (s) {
    case read_status::timeout:
      return 408;
    case read_status::too_long_target:
      return 414;
    case read_status::too_large_header:
      return 431;
    case read_status::too_large_body:
      return 413;
    default:
      return 400;
  }
}

}  // namespace stampede
