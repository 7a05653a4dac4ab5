#include "server/limiter.hpp"

#include <algorithm>
#include <cmath>

namespace stampede {

limiter::limiter(int fixed, const limiter_settings& s, mode_metrics& m)
    : fixed_(fixed), metrics_(m) {
  configure(s);
}

admit_result limiter::try_acquire() {
  int used = in_use_.load(std::memory_order_relaxed);
  // Checked and taken in one step, so neither limit is overshot by concurrent callers.
  do {
    const int adaptive = adaptive_.load(std::memory_order_relaxed);
    const int fixed = fixed_.load(std::memory_order_relaxed);
    if (fixed > 0 && used >= fixed) return admit_result::full;
    if (adaptive > 0 && used >= adaptive) return admit_result::over_limit;
  } while (!in_use_.compare_exchange_weak(used, used + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  metrics_.limit_inflight->Set(used + 1);
  return admit_result::admitted;
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
  limit_sample sample{ms, inflight, how == request_end::dropped};
  if (window_ms_ > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (window_count_ == 0) window_start_ = now;
    window_rtt_sum_ += ms;
    ++window_count_;
    window_inflight_ = std::max(window_inflight_, inflight);
    window_dropped_ = window_dropped_ || sample.dropped;
    if (window_count_ < window_samples_ ||
        now - window_start_ < std::chrono::milliseconds(window_ms_)) {
      return;
    }
    sample = {window_rtt_sum_ / window_count_, window_inflight_, window_dropped_};
    window_rtt_sum_ = 0;
    window_count_ = window_inflight_ = 0;
    window_dropped_ = false;
  }
  const double next = algorithm_->update(sample);
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
  window_ms_ = s.window_ms;
  window_samples_ = s.window_samples;
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
