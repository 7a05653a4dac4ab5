#pragma once
/// \file The adaptive limit algorithms, after Netflix's concurrency-limits: each turns one
/// request's sample (its time, the requests in flight when it ended, whether it was dropped)
/// into a new limit. Pure arithmetic, no clock and no lock (a sample says when it ended):
/// The limiter (server/execution_policy.hpp) calls them under its own lock, and the unit tests call
/// them with synthetic RTT sequences.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "config/config.hpp"

namespace stampede {

/// One admitted request, as an algorithm sees it.
struct limit_sample {
  double rtt_ms = 0;  ///< admitted to ended
  int inflight = 0;   ///< requests holding a place when it ended (itself included)
  bool dropped = false;
  std::chrono::steady_clock::time_point ended{};  ///< when it ended (what a window measures)
};

/// The bounds and parameters every algorithm reads (config.limiter).
using limiter_settings = decltype(config{}.limiter);

/// \brief An adaptive limit. Not thread-safe: one caller at a time.
class limit_algorithm {
 public:
  explicit limit_algorithm(const limiter_settings& s) : s_(s), limit_(s.initial) {}
  virtual ~limit_algorithm() = default;
  /// Learns from one sample; returns the new limit, within [min, max].
  virtual double update(const limit_sample& sample) = 0;
  double limit() const { return limit_; }
  /// New parameters (a reload); the limit found so far is kept, within the new bounds.
  virtual void configure(const limiter_settings& s);

 protected:
  double clamp(double v) const;
  limiter_settings s_;
  double limit_;
};

/// AIMD: +1 while at least half the limit is in use and nothing drops; × backoff_ratio on a
/// drop or a sample slower than aimd_timeout_ms. Reacts to loss only, never to latency.
class aimd_limit final : public limit_algorithm {
 public:
  using limit_algorithm::limit_algorithm;
  double update(const limit_sample& sample) override;
};

/// Gradient2: compares a short RTT (this sample) with a long exponential average of RTTs.
/// gradient = clamp(tolerance · long / short, 0.5, 1); new = limit · gradient + queue,
/// smoothed. Grows by queue × smoothing per update while RTT is flat, shrinks when RTT rises.
class gradient2_limit final : public limit_algorithm {
 public:
  using limit_algorithm::limit_algorithm;
  double update(const limit_sample& sample) override;
  double long_rtt_ms() const { return long_rtt_; }

 private:
  double long_rtt_ = 0;
  int samples_ = 0;  ///< taken into long_rtt_ (its warm-up is a plain mean of the first 10)
};

/// Vegas: estimates the queue as limit · (1 − no_load_rtt / rtt), where the no-load RTT is the
/// least RTT seen; grows while fewer than alpha·log10(limit) are queued, shrinks past
/// beta·log10(limit). Re-measures the no-load RTT every (0.5..1) · probe · limit samples.
class vegas_limit final : public limit_algorithm {
 public:
  explicit vegas_limit(const limiter_settings& s, std::uint64_t seed = 1);
  double update(const limit_sample& sample) override;
  double no_load_rtt_ms() const { return no_load_rtt_; }

 private:
  void next_probe();
  double no_load_rtt_ = 0;
  long since_probe_ = 0;
  long probe_at_ = 0;
  std::uint64_t rng_;
};

/// \brief Netflix's WindowedLimit: gathers samples for at least window_ms and window_samples,
/// then gives the wrapped algorithm one sample of theirs (the mean RTT, the most in flight,
/// whether any dropped). A window of 0 ms hands every sample straight through. Per-sample
/// updates overshoot: a change to the limit shows in the samples only a request's time later,
/// and meanwhile every sample moves it again (docs/limits.md).
class windowed_limit final : public limit_algorithm {
 public:
  windowed_limit(const limiter_settings& s, std::unique_ptr<limit_algorithm> inner);
  double update(const limit_sample& sample) override;
  void configure(const limiter_settings& s) override;

 private:
  std::unique_ptr<limit_algorithm> inner_;
  std::chrono::steady_clock::time_point start_{};
  double rtt_sum_ = 0;
  int count_ = 0;
  int inflight_ = 0;
  bool dropped_ = false;
};

/// The algorithm config names, windowed as limiter.window_ms says (null for "none").
std::unique_ptr<limit_algorithm> make_limit_algorithm(const limiter_settings& s);

}  // namespace stampede
