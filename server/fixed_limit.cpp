#include "server/fixed_limit.hpp"

namespace stampede {

bool fixed_limit::try_acquire() {
  const int limit = limit_.load(std::memory_order_relaxed);
  int used = in_use_.load(std::memory_order_relaxed);
  // Checked and taken in one step, so the limit is never overshot by concurrent callers.
  do {
    if (limit > 0 && used >= limit) return false;
  } while (!in_use_.compare_exchange_weak(used, used + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  return true;
}

}  // namespace stampede
