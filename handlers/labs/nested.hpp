#pragma once
/// \file Lab 5, pool starvation: GET /lab/nested?n=K&ms=N&variant=nested|inline splits the
/// request into K children of N ms each and waits for all of them. nested submits them to the
/// mode's own executor (in bounded mode, the same pool's queue); inline runs them on the
/// request's own worker. The detector reports an executor whose waiting parents have seen
/// none of their queued children start for labs.deadlock_detect_ms.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/variants.hpp"

namespace stampede {

/// \brief Parents, their children and the starvation watchdog. Thread-safety: every member
/// may be called from any thread.
class nested_lab {
 public:
  enum variant { nested, inline_children };
  static constexpr int variant_count = 2;
  static constexpr const auto& names = nested_variants;

  explicit nested_lab(wait_list& waits) : waits_(waits) {}
  job<response> run(int v, int k, int ms, const work_context& ctx);

  /// The detector, called periodically; returns its log lines.
  std::vector<std::string> watch(std::chrono::milliseconds detect);
  std::int64_t starved() const { return starved_.load(); }
  std::string to_json() const;
  void reset();

 private:
  using clock = std::chrono::steady_clock;
  void child_starts();

  wait_list& waits_;
  mutable std::mutex mutex_;  ///< guards what follows
  int parents_waiting_ = 0;
  int children_pending_ = 0;           ///< handed to the executor, not started
  clock::time_point stalled_since_{};  ///< the last child start, or when children began to wait
  bool reported_ = false;              ///< this stall has been reported
  std::int64_t last_detected_after_ms_ = -1;
  std::atomic<std::int64_t> starved_{0};
};

}  // namespace stampede
