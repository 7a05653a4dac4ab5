#include "server/http_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <sstream>

namespace stampede {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace asio::experimental::awaitable_operators;
namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}

asio::awaitable<read_status> read_request(asio::ip::tcp::socket& socket,
                                          boost::beast::flat_buffer& buffer, http_request& req,
                                          const read_limits& limits,
                                          std::chrono::steady_clock::time_point& started) {
  asio::steady_timer timer(socket.get_executor());
  if (buffer.size() == 0) {
    // Between requests: wait for the first byte within the idle timeout.
    timer.expires_after(limits.idle);
    auto first = co_await (socket.async_read_some(buffer.prepare(4096), nothrow) ||
                           timer.async_wait(nothrow));
    if (first.index() == 1) co_return read_status::closed;
    auto [ec, n] = std::get<0>(first);
    if (ec || n == 0) co_return read_status::closed;
    buffer.commit(n);
  }
  started = std::chrono::steady_clock::now();
  // One deadline for the whole request, header and body.
  timer.expires_at(started + limits.header);

  // Every read below is a single socket operation raced against the timer. (Beast's composed
  // http::async_read hops through the executor between its inner reads; a cancellation
  // emitted in such a hop is lost, and the read would then wait forever.)
  request_reader reader(limits.max_header_bytes, limits.max_body_bytes, limits.max_target_bytes);
  for (;;) {
    if (auto done = reader.feed(buffer)) {
      if (*done == read_status::ok) req = reader.release();
      co_return *done;
    }
    auto more = co_await (socket.async_read_some(buffer.prepare(4096), nothrow) ||
                          timer.async_wait(nothrow));
    if (more.index() == 1) co_return read_status::timeout;
    auto [ec, n] = std::get<0>(more);
    if (ec || n == 0) co_return read_status::closed;  // gone mid-request: nobody to answer
    buffer.commit(n);
  }
}

http_response make_response(const response& res, unsigned version, bool keep_alive,
                            bool head_request) {
  http_response out{static_cast<http::status>(res.status), version};
  out.set(http::field::server, "stampede");
  out.set(http::field::content_type, "application/json");
  out.set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : res.headers) out.set(name, value);
  out.keep_alive(keep_alive);
  out.body() = res.body;
  out.prepare_payload();
  if (head_request) out.body().clear();  // Content-Length stays that of the GET body
  return out;
}

asio::awaitable<bool> write_response(asio::ip::tcp::socket& socket, http_response& res,
                                     std::chrono::milliseconds timeout) {
  // Serialised first, then written with Asio's async_write, whose inner writes follow each
  // other without an executor hop, so the timer's cancellation always reaches a pending one.
  std::ostringstream wire;
  wire << res;
  std::string bytes = std::move(wire).str();
  asio::steady_timer timer(socket.get_executor(), timeout);
  auto wrote = co_await (asio::async_write(socket, asio::buffer(bytes), nothrow) ||
                         timer.async_wait(nothrow));
  if (wrote.index() == 1) co_return false;
  auto [ec, n] = std::get<0>(wrote);
  co_return !ec;
}

asio::awaitable<void> lingering_close(asio::ip::tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  asio::steady_timer timer(socket.get_executor());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  std::array<char, 4096> sink;
  std::size_t drained = 0;
  while (drained < 256 * 1024) {
    timer.expires_at(deadline);
    auto r =
        co_await (socket.async_read_some(asio::buffer(sink), nothrow) || timer.async_wait(nothrow));
    if (r.index() == 1) break;
    auto [ec, n] = std::get<0>(r);
    if (ec) break;
    drained += n;
  }
  socket.close(ignored);
}

asio::awaitable<void> reject_and_close(asio::ip::tcp::socket& socket, int status,
                                       std::string_view message,
                                       std::chrono::milliseconds write_timeout) {
  auto out = make_response(error_response(status, message), 11, false, false);
  co_await write_response(socket, out, write_timeout);
  co_await lingering_close(socket);
}

}  // namespace stampede
