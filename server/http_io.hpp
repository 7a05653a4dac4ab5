#pragma once
/// \file Reading and writing HTTP/1.1 with a timeout on every operation, shared by the main
/// port's session and the admin port.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <optional>

#include "handlers/work.hpp"

namespace stampede {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

/// Limits for reading one request.
struct read_limits {
  std::chrono::milliseconds idle;    ///< wait for the first byte of a request
  std::chrono::milliseconds header;  ///< first byte to complete request
  std::uint32_t max_header_bytes;
  std::uint64_t max_body_bytes;
  std::size_t max_target_bytes;
};

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

/// Reads one request into `req`, keeping any bytes past it (a pipelined next request) in
/// `buffer`. `started` is set when its first byte is in hand.
boost::asio::awaitable<read_status> read_request(boost::asio::ip::tcp::socket& socket,
                                                 boost::beast::flat_buffer& buffer,
                                                 http_request& req, const read_limits& limits,
                                                 std::chrono::steady_clock::time_point& started);

/// What is wrong with the framing of a parsed request, if anything: a target longer than
/// `max_target`, repeated or listed Content-Length, any Transfer-Encoding but a lone
/// "chunked" on HTTP/1.1, a missing (HTTP/1.1) or repeated Host.
std::optional<read_status> framing_problem(const http_request& req, std::size_t max_target);

/// Builds the HTTP response for `res` answering `req` (version, keep-alive, HEAD).
http_response make_response(const response& res, unsigned version, bool keep_alive,
                            bool head_request);

/// Writes `res` within `timeout`; false if it failed or timed out.
boost::asio::awaitable<bool> write_response(boost::asio::ip::tcp::socket& socket,
                                            http_response& res, std::chrono::milliseconds timeout);

/// Answers `status` with a JSON error body, then closes the connection gracefully.
boost::asio::awaitable<void> reject_and_close(boost::asio::ip::tcp::socket& socket, int status,
                                              std::string_view message,
                                              std::chrono::milliseconds write_timeout);

/// Half-closes, discards what the peer still sends for a short while, then closes: a close
/// with unread input would reset the connection and could destroy the answer in flight.
boost::asio::awaitable<void> lingering_close(boost::asio::ip::tcp::socket& socket);

/// Status for a read_status that is an error.
int status_for(read_status s);

}  // namespace stampede
