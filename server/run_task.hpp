#pragma once
/// \file Hands one request's work to a policy and waits for it to end while watching the
/// connection for the client leaving: the front end's whole view of a mode.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <memory>
#include <optional>

#include "server/execution_policy.hpp"

namespace stampede {

/// What the front end learns about one request's work once it has ended.
struct work_outcome {
  std::shared_ptr<const task> t;              ///< result, rejection, times
  std::optional<steady::time_point> gone_at;  ///< when the client left, if it did
};

/// The connection the work is for.
struct watched_connection {
  boost::asio::ip::tcp::socket& socket;
  boost::beast::flat_buffer& buffer;  ///< bytes sent meanwhile (a pipelined request) go here
  std::size_t max_buffered;           ///< past this, the connection is no longer read
};

/// \brief Who waits for a request's work: called once, on the executor given to start_task.
class work_waiter {
 public:
  virtual void work_done(work_outcome done) = 0;

 protected:
  ~work_waiter() = default;
};

/// Makes `body` a task of `p`'s mode, submits it to `p`, and calls `waiter->work_done` on
/// `ex` (never inline) once the task has ended. Meanwhile the socket is watched (a readiness
/// wait, no buffer held): if the client closes or resets, `p.client_gone` is called at once.
/// A mode that asks (checks_gone_before_submit) never gets work whose client had already
/// left; a mode that runs work inline is not watched (the socket is looked at afterwards). The task
/// and its completion are one allocation. `p` and the connection must outlive the operation (the
/// waiter is held).
void start_task(execution_policy& p, task::body_fn body, mode_metrics& m, downstream* dependency,
                watched_connection conn, std::shared_ptr<work_waiter> waiter,
                const boost::asio::any_io_executor& ex);

/// True if the peer has closed or reset the connection (checked without blocking or
/// consuming anything).
bool peer_gone(boost::asio::ip::tcp::socket& socket);

}  // namespace stampede
