#pragma once
// A connected pair on 127.0.0.1 (port 0): the server's end as a tcp_connection, the client's as
// a plain socket the test drives synchronously.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>

#include "server/connection.hpp"

namespace stampede::testing {

struct loopback {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket client{io};
  tcp_connection server;

  loopback() : server(accept_one(io, client)) {}

  static boost::asio::ip::tcp::socket accept_one(boost::asio::io_context& io,
                                                 boost::asio::ip::tcp::socket& client) {
    namespace ip = boost::asio::ip;
    ip::tcp::acceptor acceptor(io, {ip::make_address("127.0.0.1"), 0});
    client.connect(acceptor.local_endpoint());
    return acceptor.accept();
  }

  void send(const std::string& bytes) { boost::asio::write(client, boost::asio::buffer(bytes)); }

  /// What the client receives until the server's end closes (or `max` bytes).
  std::string receive_all(std::size_t max = 1 << 20) {
    std::string out;
    char chunk[4096];
    boost::system::error_code ec;
    while (out.size() < max) {
      std::size_t n = client.read_some(boost::asio::buffer(chunk), ec);
      if (ec) break;
      out.append(chunk, n);
    }
    return out;
  }

  /// Runs `a` on the io_context to its end (at most `limit`), and returns its result.
  template <class T>
  T run(boost::asio::awaitable<T> a, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
    io.restart();
    io.run_for(limit);
    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      throw std::runtime_error("the operation did not end in time");
    }
    return f.get();
  }
  void run(boost::asio::awaitable<void> a,
           std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
    io.restart();
    io.run_for(limit);
    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      throw std::runtime_error("the operation did not end in time");
    }
    f.get();
  }
};

}  // namespace stampede::testing
