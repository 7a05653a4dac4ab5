#pragma once
/// \file blocking mode: the whole server does one request at a time.

#include <mutex>

#include "server/execution_policy.hpp"
#include "server/modes/thread_waits.hpp"

namespace stampede {

/// \brief Runs each request's work inline on the I/O thread that read it, under one
/// server-wide lock. With main.io_threads = 1 (the default) the main port makes no progress
/// at all — no accept, read or write — while a handler runs. It cannot notice a client leave
/// while blocked, so it never cancels; the time is counted as wasted work. It has no limit of its
/// own (the line is at the lock); limiter.algorithm puts an adaptive one on that line.
/// Thread-safety: submit may be called from any I/O thread; calls are serialised.
class blocking_policy final : public execution_policy {
 public:
  blocking_policy(const config& c, metrics& m);
  void submit(std::shared_ptr<task> t) override;
  /// Child work runs inline, before the request goes on: there is nowhere else to run it.
  void submit_child(std::shared_ptr<task> t) override { t->run({.wait = &waits_, .owner = this}); }
  void client_gone(const std::shared_ptr<task>&) override {}
  void reconfigure(const config& c) override { places_.configure(c.limiter); }
  void stop_all() override;

 private:
  const rejection& shutting_down_;
  limiter places_;                 ///< the adaptive limit alone, on requests at or in the lock
  std::mutex one_at_a_time_;       ///< held while a handler runs
  std::mutex current_mutex_;       ///< guards current_
  std::shared_ptr<task> current_;  ///< the task running now, for stop_all
  std::atomic<bool> stopping_{false};
  /// Waits hold the one thread; a fan-out waits on all its fetches together there.
  thread_waits waits_{0};
};

}  // namespace stampede
