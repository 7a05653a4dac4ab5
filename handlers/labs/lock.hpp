#pragma once
/// \file Lab 6, the global lock: GET /lab/lock?ms=N&variant=global|narrow does N ms of waiting
/// work (a downstream call) and one update of shared state. global holds one server-wide lock
/// for the whole of it, as a lock taken "to be safe" around a handler does; narrow holds it
/// for the update only. A lock coordinates; it does not make work concurrent: under global,
/// any mode does one request at a time, and the rest line up on the lock.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>

#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/variants.hpp"

namespace stampede {

/// \brief The one lock of each variant, with a line of waiters that a lab_wait parks: a
/// thread sleeps, a coroutine task is suspended, never a std::mutex held across a suspension.
/// Thread-safety: every member may be called from any thread.
class lock_lab {
 public:
  enum variant { global, narrow };
  static constexpr int variant_count = 2;
  static constexpr const auto& names = lock_variants;

  explicit lock_lab(wait_list& waits) : waits_(waits) {}
  job<response> run(int v, int ms, const work_context& ctx);
  void reset();

  struct figures {
    int waiting = 0;            ///< requests in line for the lock now
    std::int64_t acquired = 0;  ///< times it was taken
    double wait_seconds = 0;    ///< time spent in line, summed
    std::int64_t updates = 0;   ///< updates of the shared state
  };
  figures read(int v) const;

 private:
  using clock = std::chrono::steady_clock;
  struct lock_state {
    bool held = false;
    std::deque<lab_wait*> line;  ///< oldest first; unlock hands the lock to the front
    int waiting = 0;
    std::int64_t acquired = 0;
    std::int64_t wait_ns = 0;
  };
  /// Takes variant v's lock, in line behind those before; fired once held, else why not.
  job<wait_end> lock(int v, const work_context& ctx);
  void unlock(int v);

  wait_list& waits_;
  mutable std::mutex mutex_;  ///< guards locks_ (held for microseconds, never across a wait)
  std::array<lock_state, variant_count> locks_{};
  /// The shared state each lock guards. Atomic only so that a scrape may read it unlocked.
  std::array<std::atomic<std::int64_t>, variant_count> updates_{};
};

}  // namespace stampede
