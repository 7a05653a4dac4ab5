#pragma once
/// \file What the admin thread does on a timer: the live page's samples, the labs' detectors.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "handlers/labs/labs.hpp"
#include "server/live.hpp"
#include "server/metrics.hpp"

namespace stampede {

/// Once a second: the live page's sample, from the same metric families /metrics writes out.
/// Ends when its executor's context stops.
boost::asio::awaitable<void> sample_live(boost::asio::any_io_executor ex, metrics& stats,
                                         live_history& live);

/// Ten times a second: the labs' detectors (a lock cycle, a starved pool), logged. On the admin
/// thread, which answers whatever the main port is doing.
boost::asio::awaitable<void> watch_labs(boost::asio::any_io_executor ex, labs& lab);

}  // namespace stampede
