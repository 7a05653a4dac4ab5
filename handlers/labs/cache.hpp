#pragma once
/// \file Lab 8, the cleanup storm: GET /lab/cache?ms=N&variant=unbounded|bounded puts one new
/// entry into a shared cache of labs.cache_entries; once it is full, each put evicts the
/// oldest, whose cleanup writes it back (a wait of N ms for the store) and frees it (1 ms of
/// CPU). unbounded starts a fire-and-forget cleanup per eviction, in the mode's own kind of
/// task (a thread, a pool job, a coroutine); nothing limits how many run at once, so under a
/// spike the cleanups outnumber the requests and take the CPU from every request. bounded
/// hands them to one drainer through a queue of labs.cleanup_queue, which it writes back in
/// batches, one wait per batch, and frees one at a time: at most one core's worth of CPU. A
/// put that finds the queue full waits for room, which slows the callers that cause the
/// cleanups instead of the whole server.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>

#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/variants.hpp"

namespace stampede {

/// \brief Both variants' caches and cleanups. Thread-safety: every member may be called from
/// any thread.
class cache_lab {
 public:
  enum variant { unbounded, bounded };
  static constexpr int variant_count = 2;
  static constexpr const auto& names = cache_variants;

  struct limits {
    int entries = 100;        ///< labs.cache_entries
    int queue = 16;           ///< labs.cleanup_queue (bounded)
    int max_cleanups = 1000;  ///< labs.max_cleanups (unbounded): past it, 503 cleanup_ceiling
  };

  explicit cache_lab(wait_list& waits) : waits_(waits) {}
  job<response> run(int v, int ms, limits lim, const work_context& ctx);
  void reset();

  struct figures {
    int entries = 0;
    int cleanups = 0;          ///< started or queued, not yet finished
    std::int64_t done = 0;     ///< cleanups finished
    std::int64_t refused = 0;  ///< cleanups the mode refused or dropped unrun
    double cpu_seconds = 0;    ///< CPU the cleanups took
    int waiting = 0;           ///< bounded: puts waiting for room in the queue
  };
  figures read(int v) const;

 private:
  struct put_waiting {
    lab_wait* wait;
    int ms;  ///< its cleanup's
  };
  struct cache {
    std::deque<std::uint64_t> keys;  ///< oldest first
    std::uint64_t next_key = 0;
    int cleanups = 0;
    std::deque<int> queue;  ///< bounded: cleanups waiting for the drainer (their ms)
    int in_batch = 0;       ///< bounded: cleanups the drainer has taken and not finished
    bool draining = false;  ///< bounded: the drainer is running or handed to the mode
    std::deque<put_waiting> room_line;  ///< bounded: puts waiting for room, oldest first
    std::int64_t done = 0;
    std::int64_t refused = 0;
    std::int64_t cpu_us = 0;
  };
  void cleaned(int v, std::int64_t cpu_us, int queue_limit = 0);
  void start_drainer(const work_context& ctx, int queue_limit);
  job<void> drain(int queue_limit, const work_context& ctx);
  job<void> clean(int v, int ms, const work_context& ctx);

  wait_list& waits_;
  mutable std::mutex mutex_;  ///< guards caches_
  std::array<cache, variant_count> caches_{};
};

}  // namespace stampede
