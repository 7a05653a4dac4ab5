#include "server/sampling.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace stampede {

namespace asio = boost::asio;

asio::awaitable<void> sample_live(asio::any_io_executor ex, metrics& stats, live_history& live) {
  asio::steady_timer timer(ex);
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    auto wall =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    live.record(stats.collect(), wall, stats.own_series());
    next += std::chrono::seconds(1);
    timer.expires_at(next);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

asio::awaitable<void> watch_labs(asio::any_io_executor ex, labs& lab) {
  asio::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    for (const auto& line : lab.watch()) spdlog::warn("lab detector: {}", line);
  }
}

}  // namespace stampede
