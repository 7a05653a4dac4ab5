#include "server/connection.hpp"

#include <sys/socket.h>

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
