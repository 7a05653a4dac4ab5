#pragma once
/// \file The execution-policy seam: how a mode runs one request's work. The front end
/// hands every request to the active policy as a `task`; nothing else branches on the mode.

#include <memory>
#include <stop_token>

#include "config/config.hpp"
#include "server/metrics.hpp"
#include "server/task.hpp"

namespace stampede {

/// \brief The seam. One implementation per mode, each in server/modes/<mode>.{hpp,cpp}.
/// Thread-safety: submit and client_gone are called from I/O threads concurrently.
class execution_policy {
 public:
  virtual ~execution_policy() = default;
  virtual mode_kind mode() const = 0;
  /// Runs `t` now, later, or rejects it; in every case the task ends through exactly one of
  /// run, reject or cancel_queued, which calls its on_done once, possibly before submit
  /// returns.
  virtual void submit(std::shared_ptr<task> t) = 0;
  /// `t`'s client has gone. A policy that cancels on disconnect removes queued work or stops
  /// running work; one that does not leaves it alone (its time is counted as wasted).
  virtual void client_gone(const std::shared_ptr<task>& t) = 0;
  /// Child work a running task started (work_context::children): wherever this mode runs
  /// its requests' work, subject to the same limits. By default, like a request.
  virtual void submit_child(std::shared_ptr<task> t) { submit(std::move(t)); }
  /// Applies the live-changeable settings of a reloaded config.
  virtual void reconfigure(const config& c) = 0;
  /// Shutdown after the drain period: queued work is rejected (shutting_down), running work is
  /// asked to stop and halted. Later submits are rejected.
  virtual void stop_all() = 0;

  /// Requested when this mode's work must end for the server's sake (stop_all, the policy's
  /// end), not when a client leaves: what ends the labs' waits (work_context::halt).
  std::stop_token halt_token() const { return halt_.get_token(); }

 protected:
  void halt() { halt_.request_stop(); }

 private:
  std::stop_source halt_;  ///< one per policy: a task holds a token of it, not a source
};

/// Builds the policy for `c.mode`.
std::unique_ptr<execution_policy> make_policy(const config& c, metrics& m);

}  // namespace stampede
