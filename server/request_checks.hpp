#pragma once
/// \file Checks on a request's bytes and framing that need no socket: what a careful server
/// refuses before it routes anything. First a strict look at the raw header bytes, for what
/// Beast accepts but a careful server must not (obsolete line folding, which Beast unfolds
/// silently; bare CR and bare LF); then Beast's parser and the framing checks. Used by the
/// session and by the fuzz targets.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace stampede {

/// What the buffered bytes of a request header are so far.
struct header_scan {
  enum class state { incomplete, complete, bad } verdict = state::incomplete;
  std::size_t length = 0;  ///< complete: bytes up to and including the blank line
};

/// Scans `bytes` from the start of a request. `complete` once CRLF CRLF ends the header
/// block and every line before it is well formed; `bad` at the first bare CR, bare LF, NUL,
/// or line starting with white space (obs-fold); `incomplete` otherwise.
header_scan scan_header(std::string_view bytes);

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

/// How a read_status that is an error is answered: its status, and its error_response's
/// message and reason.
struct refusal {
  int status;
  std::string_view message;
  std::string_view reason;
};
refusal refusal_for(read_status s);

/// \brief Turns one request's bytes, as they arrive, into a parsed request: the raw-header
/// scan first (what Beast would accept but must not pass), then Beast's parser within the
/// size limits, then the framing checks. Knows no socket: the session feeds it what it
/// reads, and the fuzz target feeds it bytes — the same code. Thread-safety: one per request.
class request_reader {
 public:
  request_reader(std::uint32_t max_header_bytes, std::uint64_t max_body_bytes,
                 std::size_t max_target_bytes);
  /// Consumes what it can of `buffer`. nullopt: more bytes are needed; otherwise `ok` (take
  /// the request with release()) or why the request is refused.
  std::optional<read_status> feed(boost::beast::flat_buffer& buffer);
  /// The parsed request, once feed returned ok.
  http_request release() { return parser_.release(); }

 private:
  boost::beast::http::request_parser<boost::beast::http::string_body> parser_;
  std::uint32_t max_header_bytes_;
  std::size_t max_target_bytes_;
  bool header_seen_ = false;
};

}  // namespace stampede
