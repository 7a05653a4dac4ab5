#include "server/http_io.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <cerrno>

namespace stampede {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace asio::experimental::awaitable_operators;
namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}

asio::awaitable<read_status> read_request(stream_type& stream, boost::beast::flat_buffer& buffer,
                                          http_request& req, const read_limits& limits,
                                          std::chrono::steady_clock::time_point& started) {
  if (buffer.size() == 0) {
    // Between requests: wait for the first byte within the idle timeout.
    stream.expires_after(limits.idle);
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), nothrow);
    if (ec || n == 0) co_return read_status::closed;  // idle too long, closed or reset
    buffer.commit(n);
  }
  started = std::chrono::steady_clock::now();
  request_reader reader(limits.max_header_bytes, limits.max_body_bytes, limits.max_target_bytes);
  if (auto done = reader.feed(buffer)) {  // the usual case: it came in one read
    if (*done == read_status::ok) req = reader.release();
    co_return *done;
  }
  co_return co_await read_rest_of_request(stream, buffer, reader, req, limits, started);
}

asio::awaitable<read_status> read_rest_of_request(stream_type& stream,
                                                  boost::beast::flat_buffer& buffer,
                                                  request_reader& reader, http_request& req,
                                                  const read_limits& limits,
                                                  std::chrono::steady_clock::time_point started) {
  // A request that trickles in. Its deadline must leave the socket open, to answer 408 (the
  // stream's deadline would close it), so these reads race a timer of their own; each is a
  // single socket operation, whose cancellation cannot be lost between inner reads as in
  // Beast's composed http::async_read.
  stream.expires_never();
  asio::steady_timer timer(stream.get_executor(), started + limits.header);
  for (;;) {
    auto more = co_await (stream.socket().async_read_some(buffer.prepare(4096), nothrow) ||
                          timer.async_wait(nothrow));
    if (more.index() == 1) co_return read_status::timeout;
    auto [ec, n] = std::get<0>(more);
    if (ec || n == 0) co_return read_status::closed;  // gone mid-request: nobody to answer
    buffer.commit(n);
    if (auto done = reader.feed(buffer)) {
      if (*done == read_status::ok) req = reader.release();
      co_return *done;
    }
  }
}

http_response make_response(response res, unsigned version, bool keep_alive, bool head_request) {
  http_response out{static_cast<http::status>(res.status), version};
  out.set(http::field::server, "stampede");
  out.set(http::field::content_type, "application/json");
  out.set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : res.headers) out.set(name, value);
  out.keep_alive(keep_alive);
  out.body() = std::move(res.body);
  out.prepare_payload();
  if (head_request) out.body().clear();  // Content-Length stays that of the GET body
  return out;
}

asio::awaitable<bool> write_response(stream_type& stream, http_response& res,
                                     std::chrono::milliseconds timeout) {
  // Written straight from the prepared message: no copy of it into a string first.
  stream.expires_after(timeout);
  auto [ec, n] = co_await http::async_write(stream, res, nothrow);
  co_return !ec;
}

bool peer_gone(asio::ip::tcp::socket& socket) {
  char c;
  ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

bool is_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

asio::awaitable<void> lingering_close(stream_type& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::milliseconds(500));
  std::array<char, 4096> sink;
  std::size_t drained = 0;
  while (drained < 256 * 1024) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), nothrow);
    if (ec) break;  // the peer closed too, or the 500 ms are up
    drained += n;
  }
  stream.socket().close(ignored);
}

asio::awaitable<void> reject_and_close(stream_type& stream, response answer,
                                       std::chrono::milliseconds write_timeout) {
  auto out = make_response(std::move(answer), 11, false, false);
  co_await write_response(stream, out, write_timeout);
  co_await lingering_close(stream);
}

}  // namespace stampede
