#pragma once
/// \file Checks on a request's bytes and framing that need no socket: what a careful server
/// refuses before it routes anything. Used by the session and by the fuzz targets.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <optional>

namespace stampede {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;

/// How reading a request ended.
enum class read_status {
  ok,
  closed,            ///< the peer closed, reset, or stayed idle: close quietly
  timeout,           ///< a request started but did not complete in time: 408
  bad_request,       ///< malformed: 400
  too_large_header,  ///< 431
  too_large_body,    ///< 413
  too_long_target,   ///< 414
};

/// What is wrong with the framing of a parsed request, if anything: a target longer than
/// `max_target`, repeated or listed Content-Length, any Transfer-Encoding but a lone
/// "chunked" on HTTP/1.1, a missing (HTTP/1.1) or repeated Host.
std::optional<read_status> framing_problem(const http_request& req, std::size_t max_target);

/// Status for a read_status that is an error.
int status_for(read_status s);

}  // namespace stampede
