#pragma once
/// \file Admission: whether one more request may start, or gets a 503 at once. Every mode's
/// limit (bounded's workers and queue, thread_per_request's ceiling, coroutine's max_tasks) is
/// one of these, so a limit that finds its own bound can take the place of a fixed one.

#include <chrono>

namespace stampede {

/// \brief A limit on requests admitted and not yet ended. Thread-safety: every member may be
/// called from any thread.
class admission {
 public:
  virtual ~admission() = default;
  /// Takes a place if there is one; false: the request is refused (the policy says why).
  virtual bool try_acquire() = 0;
  /// Gives back a place taken by try_acquire, when its request has ended: how long it held
  /// the place, and whether it ended well (what a limit that adapts learns from).
  virtual void release(std::chrono::steady_clock::duration held, bool ok) = 0;
  /// The limit now (0: none), and the places taken.
  virtual int limit() const = 0;
  virtual int in_use() const = 0;
};

}  // namespace stampede
