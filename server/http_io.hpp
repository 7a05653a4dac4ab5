#pragma once
/// \file Reading and writing HTTP/1.1 with a timeout on every operation, shared by the main
/// port's session and the admin port.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <optional>

#include "handlers/work.hpp"
#include "server/request_checks.hpp"

namespace stampede {

using http_response = boost::beast::http::response<boost::beast::http::string_body>;

/// A connection with one deadline (Beast's tcp_stream): set before each read or write, as
/// Beast's examples do, instead of a timer and a parallel group per operation. A deadline
/// that passes while no operation is pending makes the next one time out at once, so no
/// timeout can be lost between operations.
using stream_type = boost::beast::tcp_stream;

/// Limits for reading one request.
struct read_limits {
  std::chrono::milliseconds idle;    ///< wait for the first byte of a request
  std::chrono::milliseconds header;  ///< first byte to complete request
  std::uint32_t max_header_bytes;
  std::uint64_t max_body_bytes;
  std::size_t max_target_bytes;
};

/// Reads one request into `req`, keeping any bytes past it (a pipelined next request) in
/// `buffer`. `started` is set when its first byte is in hand.
boost::asio::awaitable<read_status> read_request(stream_type& stream,
                                                 boost::beast::flat_buffer& buffer,
                                                 http_request& req, const read_limits& limits,
                                                 std::chrono::steady_clock::time_point& started);

/// The rest of a request whose first bytes did not complete it: reads on within the header
/// deadline (`started` + limits.header; the 408 it ends in leaves the socket writable),
/// feeding `reader`. `req` is set on ok.
boost::asio::awaitable<read_status> read_rest_of_request(
    stream_type& stream, boost::beast::flat_buffer& buffer, request_reader& reader,
    http_request& req, const read_limits& limits, std::chrono::steady_clock::time_point started);

/// Builds the HTTP response for `res` answering `req` (version, keep-alive, HEAD).
http_response make_response(response res, unsigned version, bool keep_alive, bool head_request);

/// Writes `res` within `timeout`; false if it failed or timed out.
boost::asio::awaitable<bool> write_response(stream_type& stream, http_response& res,
                                            std::chrono::milliseconds timeout);

/// Writes `answer` (an error_response), then closes the connection gracefully.
boost::asio::awaitable<void> reject_and_close(stream_type& stream, response answer,
                                              std::chrono::milliseconds write_timeout);

/// True if the peer has closed or reset the connection (looked at without blocking or
/// consuming anything: a recv(MSG_PEEK)).
bool peer_gone(boost::asio::ip::tcp::socket& socket);

/// A request id worth echoing: short, and only characters safe in a header.
bool is_request_id(std::string_view id);

/// Half-closes, discards what the peer still sends for a short while, then closes: a close
/// with unread input would reset the connection and could destroy the answer in flight.
boost::asio::awaitable<void> lingering_close(stream_type& stream);

}  // namespace stampede
