#pragma once
/// \file A mode's admission: its own fixed limit (bounded's workers and queue,
/// thread_per_request's ceiling, coroutine's max_tasks; blocking has none) and, when
/// limiter.algorithm is set, an adaptive limit in front of it that learns from every admitted
/// request's time. Every mode admits through one.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "server/admission.hpp"
#include "server/limit_algorithms.hpp"
#include "server/metrics.hpp"

namespace stampede {

/// \brief Admits while fewer than the limit hold a place. The adaptive limit refuses with
/// the reason `limit`, the fixed one with the mode's own. Thread-safety: every member may be
/// called from any thread; samples are learnt from one at a time.
class limiter final : public admission {
 public:
  /// `fixed`: the mode's own limit (0: none), which refuses with `when_full` (null for a mode
  /// that has no fixed limit: `fixed` is then none). `m`: where stampede_limit{mode} is published.
  limiter(int fixed, const rejection* when_full, const limiter_settings& s, mode_metrics& m);
  const rejection* try_acquire() override;
  void release(std::chrono::steady_clock::duration held, request_end how) override;
  /// The lower of the two limits in force (0: none).
  int limit() const override;
  int in_use() const override { return in_use_.load(std::memory_order_relaxed); }
  /// A lower limit refuses new requests until enough of those admitted have ended.
  void set_fixed(int fixed);
  /// A reload: another algorithm starts again from limiter.initial; the same one keeps the
  /// limit it found, within the new bounds; "none" leaves the fixed limit alone.
  void configure(const limiter_settings& s);
  /// The adaptive limit now (0: none).
  int adaptive() const { return adaptive_.load(std::memory_order_relaxed); }

 private:
  void publish();
  std::atomic<int> fixed_;
  std::atomic<int> adaptive_{0};
  std::atomic<int> in_use_{0};
  mode_metrics& metrics_;
  const rejection* when_full_;
  const rejection& over_limit_;
  std::mutex mutex_;                            ///< guards the algorithm
  std::unique_ptr<limit_algorithm> algorithm_;  ///< null: no adaptive limit
  std::string algorithm_name_;                  ///< which one algorithm_ is
};

}  // namespace stampede
