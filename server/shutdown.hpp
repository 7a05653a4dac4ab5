#pragma once
/// \file Graceful shutdown: stop accepting, drain, stop what is left, wait for the connections.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "server/front_end.hpp"

namespace stampede {

/// Every policy that may still run work: the active one and those a mode switch retired.
using policies_fn = std::function<std::vector<std::shared_ptr<execution_policy>>()>;

/// Stops accepting (the backlog is answered, not reset), lets in-flight requests finish
/// within shutdown.drain_timeout_ms, then answers the rest (queued: 503 shutting_down;
/// running: asked to stop, 1 s more), and waits up to 1 s for every connection to write what
/// it owes and close. Runs on `ex` (the admin thread); returns when the server may stop.
boost::asio::awaitable<void> drain_for_shutdown(boost::asio::any_io_executor ex, front_end& fe,
                                                listener& main, policies_fn policies);

}  // namespace stampede
