#pragma once
// What the front end of a running server is made of, for tests of the parts around it: the
// metrics, the labs, the dependency, the config and policy slots. `serving` adds the main
// port on 127.0.0.1 (port 0), run by one I/O thread of its own.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "server/front_end.hpp"

namespace stampede::testing {

struct server_rig {
  metrics stats;
  labs lab;
  downstream dependency;
  shared_slot<const config> cfg;
  shared_slot<execution_policy> policy;
  front_end fe{stats, cfg, policy, dependency, lab};

  explicit server_rig(const config& c = {})
      : dependency(c.downstream.capacity),
        cfg(std::make_shared<const config>(c)),
        policy(std::shared_ptr<execution_policy>(make_policy(c, stats))) {}
};

struct serving : server_rig {
  boost::asio::io_context io;
  completion_lane lane{io.get_executor()};
  listener main{io, {{io, lane}}, fe};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::jthread runner;

  /// `accepting`: starts the accept loop (without it, connections wait in the backlog).
  explicit serving(const config& c = {}, bool accepting = true) : server_rig(c) {
    main.open({"127.0.0.1", 0}, 128);
    if (accepting) main.start();
    guard.emplace(io.get_executor());
    runner = std::jthread([this] { io.run(); });
  }
  ~serving() {
    policy.load()->stop_all();
    guard.reset();
    io.stop();
  }

  std::uint16_t port() const {
    const auto a = main.address();
    return static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
  }

  /// A client connected to the main port (not yet sending).
  boost::asio::ip::tcp::socket connect() {
    boost::asio::ip::tcp::socket s(client_io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port()});
    return s;
  }
  /// Sends `target` as a GET with Connection: close, and returns all that comes back.
  static std::string get(boost::asio::ip::tcp::socket& s, const std::string& target) {
    boost::asio::write(s, boost::asio::buffer("GET " + target +
                                              " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    return read_all(s);
  }
  static std::string read_all(boost::asio::ip::tcp::socket& s) {
    std::string out;
    char chunk[4096];
    boost::system::error_code ec;
    for (;;) {
      std::size_t n = s.read_some(boost::asio::buffer(chunk), ec);
      if (ec) break;
      out.append(chunk, n);
    }
    return out;
  }

  boost::asio::io_context client_io;  ///< the clients' sockets (used synchronously)
};

}  // namespace stampede::testing
