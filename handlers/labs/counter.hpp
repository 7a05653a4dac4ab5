#pragma once
/// \file Lab 1, the lost update: GET /lab/counter?n=K&variant=racy|mutex|atomic|owner adds 1
/// to the variant's shared counter K times, with an interleaving point in every increment.
/// owner shares no counter at all: it sends each increment to the task that owns it.

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "handlers/labs/counter_owner.hpp"
#include "handlers/labs/variants.hpp"
#include "handlers/work.hpp"

namespace stampede {

/// \brief The four counters, shared by the whole server (owner's only by its owner task).
/// Thread-safety: run() from any thread; racy's counter is a data race on purpose (ThreadSanitizer
/// reports it), the others are not.
class counter_lab {
 public:
  enum variant { racy, mutex, atomic, owner };
  static constexpr int variant_count = 4;
  static constexpr const auto& names = counter_variants;

  explicit counter_lab(wait_list& waits) : owner_(waits) {}
  /// K increments of variant `v`; answers how many it made.
  job<response> run(int v, int k, const work_context& ctx);
  void reset();

  struct figures {
    std::int64_t expected = 0;  ///< increments made, counted exactly
    std::int64_t value = 0;     ///< what the counter says
  };
  figures read(int v);

 private:
  job<void> increment_racy(const work_context& ctx);
  job<void> increment_mutex(const work_context& ctx);
  job<void> increment_atomic(const work_context& ctx);

  std::int64_t racy_value_ = 0;  ///< read, interleave, write: no synchronisation at all
  std::mutex mutex_;
  std::int64_t mutex_value_ = 0;  ///< under mutex_
  std::atomic<std::int64_t> atomic_value_{0};
  counter_owner owner_;
  std::array<std::atomic<std::int64_t>, variant_count> expected_{};
};

}  // namespace stampede
