#include "server/shutdown.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace stampede {

namespace asio = boost::asio;

asio::awaitable<void> drain_for_shutdown(asio::any_io_executor ex, front_end& fe, listener& main,
                                         policies_fn policies) {
  auto drain = std::chrono::milliseconds(fe.cfg.load()->shutdown.drain_timeout_ms);
  spdlog::info("shutting down: draining {} in-flight request(s) for up to {} ms",
               fe.in_flight.load(), drain.count());
  fe.draining.store(true);
  main.close_for_shutdown();
  // Connections waiting idle for their next request stop waiting: a request already sent
  // on one gets 503, the others a graceful close.
  fe.connections.wake_all();
  asio::steady_timer tick(ex);
  auto wait_until = [&](auto done, std::chrono::milliseconds limit) -> asio::awaitable<bool> {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      tick.expires_after(std::chrono::milliseconds(10));
      co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return done();
  };
  auto idle = [&fe] { return fe.in_flight.load() == 0; };
  if (!co_await wait_until(idle, drain)) {
    spdlog::warn("drain timeout: stopping {} request(s)", fe.in_flight.load());
    for (const auto& p : policies()) p->stop_all();
    co_await wait_until(idle, std::chrono::milliseconds(1000));
  }
  // Then every connection writes what it owes and closes (a graceful close lingers at most
  // 500 ms): a request left unread when the process exits would be reset by the kernel.
  co_await wait_until([&] { return main.closed() && fe.open_connections.load() <= 0; },
                      std::chrono::milliseconds(1000));
}

}  // namespace stampede
