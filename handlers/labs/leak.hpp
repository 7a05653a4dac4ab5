#pragma once
/// \file Lab 3, the task leak: GET /lab/leak?ms=N&variant=leaky|fixed starts a helper as child
/// work that takes N ms to produce a result; the request waits at most labs.wait_ms for it.
/// leaky's helper then waits forever to hand its result to a requester that has gone (the
/// unbuffered-channel leak); fixed's hand-over never blocks (a channel with room for one).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/variants.hpp"

namespace stampede {

/// \brief The helpers alive now, shared by the whole server. Thread-safety: every member may be
/// called from any thread.
class leak_lab {
 public:
  enum variant { leaky, fixed };
  static constexpr int variant_count = 2;
  static constexpr const auto& names = leak_variants;

  explicit leak_lab(wait_list& waits) : waits_(waits) {}
  /// One request: `ms` of helper work holding `kb` KiB; waits at most `wait` for it. Past
  /// `max_leaked` helpers alive after their request ended: 503 leak_ceiling at once.
  job<response> run(int v, int ms, int kb, std::chrono::milliseconds wait, int max_leaked,
                    const work_context& ctx);

  /// Helpers alive after their request ended, of variant `v`.
  int leaked(int v) const { return leaked_[v].load(); }
  /// Each such helper and how long it has been alive, as JSON (the goleak analogue).
  std::string leaked_json() const;

 private:
  struct handoff;
  struct helper_record {
    int variant;
    std::chrono::steady_clock::time_point started;   ///< when its request started it
    std::chrono::steady_clock::time_point orphaned;  ///< when its request gave up on it
  };
  job<void> helper(std::shared_ptr<handoff> h, int ms, int kb, const work_context& ctx);

  wait_list& waits_;
  mutable std::mutex mutex_;          ///< guards orphans_
  std::list<helper_record> orphans_;  ///< helpers alive after their request ended
  std::array<std::atomic<int>, variant_count> leaked_{};
};

}  // namespace stampede
