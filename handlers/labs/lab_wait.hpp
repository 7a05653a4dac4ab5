#pragma once
/// \file The one way lab work waits for another piece of lab work: a lock to be granted, a
/// result to be handed over, children to finish. Knows nothing of Asio or the modes.

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>

#include "handlers/work.hpp"

namespace stampede {

/// How a lab_wait ended.
enum class wait_end { fired, timed_out, reset, victim, halted };

class lab_wait;

/// \brief Every lab_wait alive now, so that POST /labs/reset can free them all.
/// Thread-safety: every member may be called from any thread.
class wait_list {
 public:
  /// Ends every wait alive now with `why`; returns how many it ended.
  int end_all(wait_end why);
  /// Waits under way now (set up and not yet ended ones are not counted).
  int waiting() const { return waiting_.load(); }

 private:
  friend class lab_wait;
  mutable std::mutex mutex_;
  std::list<lab_wait*> waits_;
  std::atomic<int> waiting_{0};
};

/// \brief One wait of lab work, ended only by the lab: its event (fired), a reset, a deadlock
/// victim's choice, or the work's halt (shutdown, the mode's end). A client leaving does not
/// end it, as nothing can cancel a thread blocked on a mutex or on a channel nobody reads.
/// It holds no CPU: a thread mode's thread sleeps on a condition variable, a coroutine task
/// is suspended. Thread-safety: end() from any thread; wait() once, by the work that waits.
class lab_wait {
 public:
  explicit lab_wait(wait_list& all);
  ~lab_wait();
  lab_wait(const lab_wait&) = delete;
  lab_wait& operator=(const lab_wait&) = delete;

  /// Ends the wait with `why` unless it has ended already; true if this call ended it.
  bool end(wait_end why);
  /// How it ended (nullopt: not yet).
  std::optional<wait_end> ended() const;
  /// Waits until it ends, or `timeout` passes (none: no limit). `ctx` is the waiting work's.
  job<wait_end> wait(const work_context& ctx, std::optional<std::chrono::milliseconds> timeout);

 private:
  wait_list& all_;
  std::list<lab_wait*>::iterator place_;
  std::stop_source wake_;
  std::atomic<int> why_{-1};
};

using child_body = std::function<job<void>(const work_context&)>;

/// Hands `body` to the mode as child work (work_context::children), fire and forget:
/// `on_start` runs when the mode starts it; `never_started` when the mode drops it unrun (at
/// once without a spawner); `gone` once the work is gone, run or not. Each is optional.
void spawn_child(const work_context& ctx, child_body body, std::function<void()> on_start = {},
                 std::function<void()> never_started = {}, std::function<void()> gone = {});

/// \brief K children that a request hands to its mode (work_context::children) and waits for.
/// A child counts as gone when the work that would run it is gone, run or not: a mode may
/// refuse or drop a child without running it. Thread-safety: spawn and wait by the parent;
/// the children end from any thread.
class child_group {
 public:
  child_group(wait_list& waits, int k);
  /// Hands one child to the mode: `on_start` (optional) runs when the mode starts it, then
  /// `body`; `never_started` (optional) when the mode drops it unrun. With no spawner in
  /// `ctx`, the child is dropped at once.
  void spawn(const work_context& ctx, child_body body, std::function<void()> on_start = {},
             std::function<void()> never_started = {});
  /// Waits until every child is gone, as a future's get() does: a client leaving does not
  /// end it. fired, or why the wait ended first.
  job<wait_end> wait(const work_context& ctx);
  /// Children that the mode ran.
  int ran() const { return state_->ran.load(); }

 private:
  struct state {
    state(wait_list& w, int k) : all_gone(w), left(k) {}
    lab_wait all_gone;
    std::atomic<int> left;
    std::atomic<int> ran{0};
  };
  std::shared_ptr<state> state_;
};

/// The answer of lab work that stopped because its work_context asked it to: 503
/// shutting_down (the halt) or cancelled (the client left).
response lab_work_stopped(const work_context& ctx);

/// The answer of lab work whose wait was ended by a reset (503 lab_reset) or by the server's
/// halt (503 shutting_down).
response lab_stopped(wait_end why, const work_context& ctx);

/// A real interleaving point between two steps of lab work: the thread gives up the CPU (the
/// thread modes), or the coroutine lets the other tasks of its thread run.
struct interleave_awaiter {
  const work_context& ctx;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return ctx.wait->interleave(h); }
  void await_resume() const noexcept {}
};
inline interleave_awaiter interleave(const work_context& ctx) {
  return interleave_awaiter{ctx};
}

}  // namespace stampede
