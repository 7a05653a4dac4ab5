#include "server/limiter.hpp"

#include <algorithm>
#include <cmath>

namespace stampede {

limiter::limiter(int fixed, const rejection* when_full, const limiter_settings& s, mode_metrics& m)
    : fixed_(fixed),
      metrics_(m),
      when_full_(when_full),
      over_limit_(m.rejection_for(common_reason::limit)) {
  configure(s);
}

const rejection* limiter::try_acquire() {
  int used = in_use_.load(std::memory_order_relaxed);
  // Checked and taken in one step, so neither limit is overshot by concurrent callers.
  do {
    const int adaptive = adaptive_.load(std::memory_order_relaxed);
    const int fixed = fixed_.load(std::memory_order_relaxed);
    if (when_full_ != nullptr && fixed > 0 && used >= fixed) return when_full_;
    if (adaptive > 0 && used >= adaptive) return &over_limit_;
  } while (!in_use_.compare_exchange_weak(used, used + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  metrics_.limit_inflight->Set(used + 1);
  return nullptr;
}

void limiter::release(std::chrono::steady_clock::duration held, request_end how) {
  const int inflight = in_use_.fetch_sub(1, std::memory_order_acq_rel);
  metrics_.limit_inflight->Set(inflight - 1);
  // A client that left says nothing of the load (Netflix stopped counting those as drops:
  // they pulled the limit down for no reason). Nor does a time under 100 µs: an answer that
  // never waited (a health check) would pass for the no-load time of the real work.
  if (how == request_end::ignored || adaptive_.load(std::memory_order_relaxed) == 0) return;
  const double ms = std::chrono::duration<double, std::milli>(held).count();
  if (how == request_end::ok && ms < 0.1) return;
  std::lock_guard lock(mutex_);
  if (!algorithm_) return;
  const double next = algorithm_->update(
      {ms, inflight, how == request_end::dropped, std::chrono::steady_clock::now()});
  adaptive_.store(std::max(1, static_cast<int>(std::lround(next))), std::memory_order_relaxed);
  publish();
}

int limiter::limit() const {
  const int adaptive = adaptive_.load(std::memory_order_relaxed);
  const int fixed = fixed_.load(std::memory_order_relaxed);
  if (adaptive == 0) return fixed;
  return fixed == 0 ? adaptive : std::min(adaptive, fixed);
}

void limiter::set_fixed(int fixed) {
  fixed_.store(fixed, std::memory_order_relaxed);
  publish();
}

void limiter::configure(const limiter_settings& s) {
  std::lock_guard lock(mutex_);
  if (s.algorithm == "none") {
    algorithm_.reset();
    adaptive_.store(0, std::memory_order_relaxed);
  } else {
    if (algorithm_ && s.algorithm == algorithm_name_) {
      algorithm_->configure(s);
    } else {
      algorithm_ = make_limit_algorithm(s);
      algorithm_name_ = s.algorithm;
    }
    adaptive_.store(std::max(1, static_cast<int>(std::lround(algorithm_->limit()))),
                    std::memory_order_relaxed);
  }
  publish();
}

void limiter::publish() {
  metrics_.limit->Set(limit());
}

}  // namespace stampede
