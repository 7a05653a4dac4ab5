#pragma once
/// \file The HTTP/1.1 client behind downstream.url: a keep-alive pool of at most
/// downstream.capacity connections, a line for calls that find none free, a timeout per
/// attempt, retries within a budget, and the caller's deadline sent along.

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <list>
#include <memory>
#include <thread>
#include <vector>

#include "config/http_url.hpp"
#include "handlers/remote.hpp"
#include "handlers/retry_budget.hpp"
#include "handlers/work.hpp"
#include "server/metrics.hpp"

namespace stampede {

/// \brief remote_dependency over HTTP/1.1. All its I/O runs on one thread of its own, which
/// callers only post to: a coroutine-mode task waits without a thread, a thread mode's
/// request thread blocks until its call ends (handlers/remote.hpp).
/// Thread-safety: call, configure and stats may be called from any thread.
class remote_client final : public remote_dependency {
 public:
  struct settings {
    int capacity = 32;  ///< pooled connections at most; 0 = no limit
    int timeout_ms = 1000;
    int retries = 0;
    int retry_budget_percent = 0;
    bool propagate_deadline = false;
  };
  static settings settings_of(const config& c);

  remote_client(http_url target, const settings& s, metrics& m);
  /// Ends every call still under way as cancelled, closes the pool, joins the thread.
  ~remote_client();
  remote_client(const remote_client&) = delete;
  remote_client& operator=(const remote_client&) = delete;

  void call(int ms, clock::time_point deadline, const std::stop_token& stop,
            std::function<void(call_outcome)> done) override;
  /// Applies new settings live: a smaller pool closes connections as they come back.
  void configure(const settings& s);
  /// The pool: capacity, connections in use, calls waiting for one.
  downstream::snapshot stats() const;

 private:
  struct connection;
  struct pending;
  using pending_ptr = std::shared_ptr<pending>;

  void start_attempt(const pending_ptr& p);
  void exchange(const pending_ptr& p, std::unique_ptr<connection> c, bool fresh);
  void attempt_ended(const pending_ptr& p, call_outcome o);
  void finish(const pending_ptr& p, call_outcome o);
  void cancel(const pending_ptr& p);
  /// A lent connection comes back (`slot_freed`): kept if `c` is set and there is room, then
  /// the line is served.
  void give_back(std::unique_ptr<connection> c, bool slot_freed);
  bool has_room() const;
  void publish();

  const http_url target_;
  metrics& stats_;
  retry_budget budget_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  // Everything below is touched on the client's thread only, but the settings (written by
  // configure) and the published figures (read by stats).
  std::atomic<int> capacity_, timeout_ms_, retries_;
  std::atomic<bool> propagate_;
  std::vector<std::unique_ptr<connection>> idle_;
  std::list<pending_ptr> line_;  ///< calls waiting for a connection, oldest first
  std::list<pending_ptr> live_;  ///< every call not yet ended (for the destructor)
  int busy_ = 0;                 ///< connections lent to a call (connecting included)
  std::atomic<int> published_busy_{0}, published_waiting_{0};
  std::thread thread_;
};

}  // namespace stampede
