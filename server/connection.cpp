#include "server/connection.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace stampede {

namespace asio = boost::asio;

tcp_connection::tcp_connection(asio::ip::tcp::socket socket) : stream_(std::move(socket)) {
  boost::system::error_code ignored;
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  stream_.socket().non_blocking(true, ignored);
}

std::size_t tcp_connection::read_now(asio::mutable_buffer room) {
  ssize_t got = ::recv(stream_.socket().native_handle(), room.data(), room.size(), MSG_DONTWAIT);
  return got > 0 ? static_cast<std::size_t>(got) : 0;
}

std::size_t tcp_connection::available() {
  boost::system::error_code ec;
  std::size_t n = stream_.socket().available(ec);
  return ec ? 0 : n;
}

bool tcp_connection::peer_gone() {
  char c;
  ssize_t n = ::recv(stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

void tcp_connection::shutdown_send() {
  boost::system::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

void tcp_connection::close() {
  boost::system::error_code ignored;
  stream_.socket().close(ignored);
}

}  // namespace stampede

namespace stampede {

namespace http = boost::beast::http;

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

bool is_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace stampede
