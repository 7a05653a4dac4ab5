#pragma once
/// \file Hands a task to a policy and resumes the coroutine on its own executor when the
/// task completes, on whatever thread that happens.

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "server/execution_policy.hpp"

namespace stampede {

/// Submits `t` to `p` and completes when `t` has completed. Cancelling the awaiting
/// coroutine (e.g. the `||` with a disconnect watch) calls `p.client_gone(t)`; the
/// operation still completes only when the task has returned, so nothing outlives it.
/// `p` must outlive the operation.
boost::asio::awaitable<void> run_task(execution_policy& p, std::shared_ptr<task> t);

}  // namespace stampede
