#pragma once
/// \file Admission: whether one more request may start, or gets a 503 without running. The
/// limits of the modes that have one (bounded's workers and queue, thread_per_request's
/// ceiling, coroutine's max_tasks) are each one of these, and server/limiter.hpp puts a limit
/// that finds its own bound in front of it. blocking, one request at a time, has none.

#include <chrono>

namespace stampede {

/// What try_acquire decided.
enum class admit_result {
  admitted,
  over_limit,  ///< the adaptive limit is reached (503 limit)
  full         ///< the mode's own fixed limit is reached (the mode names the reason)
};

/// How an admitted request ended, as a limit that adapts learns from it.
enum class request_end {
  ok,       ///< answered: its time is a sample
  dropped,  ///< timed out or turned away after admission (a queue timeout, a 503/504)
  ignored   ///< its client left, or the server is stopping: says nothing of the load
};

/// \brief A limit on requests admitted and not yet ended. Thread-safety: every member may be
/// called from any thread.
class admission {
 public:
  virtual ~admission() = default;
  /// Takes a place if there is one; otherwise says which limit refused.
  virtual admit_result try_acquire() = 0;
  /// Gives back a place taken by try_acquire when its request has ended: how long it held
  /// the place, and how it ended.
  virtual void release(std::chrono::steady_clock::duration held, request_end how) = 0;
  /// The limit now (0: none), and the places taken.
  virtual int limit() const = 0;
  virtual int in_use() const = 0;
};

}  // namespace stampede
