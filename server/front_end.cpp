#include "server/front_end.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/session.hpp"

namespace stampede {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

void open_acceptor(tcp::acceptor& a, const endpoint& e, int backlog) {
  tcp::endpoint ep(asio::ip::make_address(e.host), e.port);
  a.open(ep.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  if (ep.protocol() == tcp::v6()) a.set_option(asio::ip::v6_only(true));
  a.bind(ep);
  a.listen(backlog);
}

std::string bound_address(const tcp::acceptor& a) {
  auto ep = a.local_endpoint();
  auto addr = ep.address().to_string();
  if (ep.address().is_v6()) addr = "[" + addr + "]";
  return addr + ":" + std::to_string(ep.port());
}

listener::listener(asio::io_context& accept_io, std::vector<io_thread> threads, front_end& fe)
    : accept_io_(accept_io), threads_(std::move(threads)), fe_(fe), acceptor_(accept_io) {}

void listener::start() {
  asio::co_spawn(accept_io_, accept_loop(), asio::detached);
}

io_thread& listener::pick() {
  return threads_[next_];
}

void listener::admit(tcp::socket socket, io_thread& on) {
  // The next thread's turn comes with a connection, not with an accept that found none.
  next_ = (next_ + 1) % threads_.size();
  if (fe_.open_connections.load() >= fe_.cfg.load()->http.max_connections) {
    fe_.stats.connections_refused().Increment();
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  // The socket was accepted onto its thread's context: the session and its stream's deadline
  // timer run there.
  start_session(std::move(socket), fe_, on.lane);
}

asio::awaitable<void> listener::accept_loop() {
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  // After each asynchronous accept, the backlog is drained with synchronous accepts (the
  // acceptor is non-blocking: open()), so a burst of connections is taken in one turn of the
  // I/O loop rather than one per turn behind every other ready handler.
  for (;;) {
    io_thread& on = pick();
    auto [ec, socket] = co_await acceptor_.async_accept(on.io.get_executor(), nothrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (!ec && !acceptor_.is_open()) {
      // Accepted just before shutdown closed the acceptor: answered like the rest of the
      // backlog (its session drains). Dropped here, its unread request would be reset.
      admit(std::move(socket), on);
      co_return;
    }
    if (!acceptor_.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: back off briefly rather than spin.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(accept_io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow);
      continue;
    }
    admit(std::move(socket), on);
    // The rest of the backlog without a turn through the queue each, but a bounded batch, so
    // that a flood of connections cannot keep this I/O thread from the sessions it serves.
    for (int i = 0; i < 256; ++i) {
      io_thread& next = pick();
      tcp::socket more(next.io);
      boost::system::error_code again;
      acceptor_.accept(more, again);
      if (again) break;  // would_block: the backlog is empty (or a real error: next turn)
      admit(std::move(more), next);
    }
  }
}

void listener::close_for_shutdown() {
  asio::post(accept_io_, [this] {
    for (;;) {
      io_thread& on = pick();
      tcp::socket waiting(on.io);
      boost::system::error_code none_left;
      acceptor_.accept(waiting, none_left);
      if (none_left) break;
      admit(std::move(waiting), on);
    }
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    closed_.store(true);
  });
}

}  // namespace stampede
