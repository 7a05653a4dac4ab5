#pragma once
/// \file Admission: whether one more request may start, or gets a 503 without running, and
/// why. Every mode admits through one of these (the limiter, in server/execution_policy.hpp): its
/// own fixed limit, if it has one (bounded's workers and queue, thread_per_request's ceiling,
/// coroutine's max_tasks; blocking has none), behind the adaptive limit that limiter.algorithm
/// sets.

#include <chrono>
#include <string>
#include <string_view>

#include "handlers/work.hpp"

namespace prometheus {
class Counter;
}

namespace stampede {

/// \brief A reason to answer 503 without running the work: a word of its mode's vocabulary
/// (each mode names its own in its file pair) or of the seam's (below). Made once per mode and
/// reason (mode_metrics::rejection_for), with its counter and its answer, so that turning a
/// request away costs no allocation.
struct rejection {
  std::string_view reason;  ///< stampede_rejected_total{reason}, and the answer's "reason"
  /// The request was admitted, then turned away because of the load (it waited too long): a
  /// limit that adapts learns from it as a drop. Otherwise it says nothing of the load.
  bool dropped = false;
  prometheus::Counter* counted = nullptr;
  std::string body;  ///< the 503's JSON body
};

/// The seam's reasons, every mode's: the server is stopping, or the adaptive limit
/// (limiter.algorithm) is reached.
namespace common_reason {
inline constexpr std::string_view shutting_down = "shutting_down";
inline constexpr std::string_view limit = "limit";
/// Near the limit, the request's criticality had used up its share (limiter.*_share).
inline constexpr std::string_view shed = "shed";
}  // namespace common_reason

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
  /// Takes a place if there is one for a request of criticality `c` (null); otherwise the
  /// reason the request is turned away. Near the limit the lower criticalities are shed
  /// first: each may fill only its share of the limit (limiter.*_share).
  virtual const rejection* try_acquire(criticality c) = 0;
  /// A CRITICAL request's place.
  const rejection* try_acquire() { return try_acquire(criticality::critical); }
  /// Gives back a place taken by try_acquire when its request has ended: how long it held
  /// the place, and how it ended.
  virtual void release(std::chrono::steady_clock::duration held, request_end how) = 0;
  /// The limit now (0: none), and the places taken.
  virtual int limit() const = 0;
  virtual int in_use() const = 0;
};

}  // namespace stampede
