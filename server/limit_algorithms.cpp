#include "server/limit_algorithms.hpp"

#include <algorithm>
#include <cmath>

namespace stampede {

void limit_algorithm::configure(const limiter_settings& s) {
  s_ = s;
  limit_ = clamp(limit_);
}

double limit_algorithm::clamp(double v) const {
  return std::clamp(v, static_cast<double>(s_.min), static_cast<double>(s_.max));
}

double aimd_limit::update(const limit_sample& sample) {
  if (sample.dropped || sample.rtt_ms > s_.aimd_timeout_ms) {
    limit_ = clamp(std::floor(limit_ * s_.aimd_backoff_ratio));
  } else if (sample.inflight * 2 >= limit_) {
    limit_ = clamp(limit_ + 1);
  }
  return limit_;
}

double gradient2_limit::update(const limit_sample& sample) {
  const double short_rtt = sample.rtt_ms;
  // The long RTT: a plain mean of the first 10 samples, then an exponential average over
  // about long_window samples.
  constexpr int warmup = 10;
  if (samples_ < warmup) {
    long_rtt_ = (long_rtt_ * samples_ + short_rtt) / (samples_ + 1);
    ++samples_;
  } else {
    const double factor = 2.0 / (s_.gradient2_long_window + 1);
    long_rtt_ = long_rtt_ * (1 - factor) + short_rtt * factor;
  }
  // Once an overload has passed, the long RTT remembers it: decay it faster, so the limit
  // can grow again.
  if (short_rtt > 0 && long_rtt_ / short_rtt > 2) long_rtt_ *= 0.95;
  // A limit that is not being used says nothing about whether it could be higher.
  if (sample.inflight < limit_ / 2) return limit_;
  const double gradient =
      short_rtt > 0 ? std::clamp(s_.gradient2_tolerance * long_rtt_ / short_rtt, 0.5, 1.0) : 1.0;
  const double next = limit_ * gradient + s_.gradient2_queue;
  limit_ = clamp(limit_ * (1 - s_.gradient2_smoothing) + next * s_.gradient2_smoothing);
  return limit_;
}

vegas_limit::vegas_limit(const limiter_settings& s, std::uint64_t seed)
    : limit_algorithm(s), rng_(seed | 1) {
  next_probe();
}

void vegas_limit::next_probe() {
  // xorshift64: the jitter only has to keep servers from probing in step.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const double jitter = 0.5 + 0.5 * static_cast<double>(rng_ % 1000) / 1000.0;
  probe_at_ = static_cast<long>(jitter * s_.vegas_probe * limit_);
  since_probe_ = 0;
}

double vegas_limit::update(const limit_sample& sample) {
  // The probe takes this sample as the no-load RTT, whatever the load: the drift Netflix's
  // users reported (a loaded RTT taken for the floor lets the limit climb).
  if (++since_probe_ >= probe_at_) {
    next_probe();
    no_load_rtt_ = sample.rtt_ms;
    return limit_;
  }
  if (no_load_rtt_ <= 0 || sample.rtt_ms < no_load_rtt_) {
    no_load_rtt_ = sample.rtt_ms;
    return limit_;
  }
  const double log_limit = std::max(1.0, std::floor(std::log10(limit_)));
  double next = limit_;
  if (sample.dropped) {
    next = limit_ - log_limit;
  } else if (sample.inflight * 2 < limit_) {
    return limit_;  // not using the limit: no evidence either way
  } else {
    const double queued = std::ceil(limit_ * (1 - no_load_rtt_ / sample.rtt_ms));
    if (queued <= log_limit) {
      next = limit_ + s_.vegas_beta * log_limit;  // nothing queued: grow fast
    } else if (queued < s_.vegas_alpha * log_limit) {
      next = limit_ + log_limit;
    } else if (queued > s_.vegas_beta * log_limit) {
      next = limit_ - log_limit;
    }
  }
  limit_ = clamp(limit_ * (1 - s_.vegas_smoothing) + clamp(next) * s_.vegas_smoothing);
  return limit_;
}

windowed_limit::windowed_limit(const limiter_settings& s, std::unique_ptr<limit_algorithm> inner)
    : limit_algorithm(s), inner_(std::move(inner)) {
  limit_ = inner_->limit();
}

double windowed_limit::update(const limit_sample& sample) {
  if (s_.window_ms <= 0) return limit_ = inner_->update(sample);
  if (count_ == 0) start_ = sample.ended;
  rtt_sum_ += sample.rtt_ms;
  ++count_;
  inflight_ = std::max(inflight_, sample.inflight);
  dropped_ = dropped_ || sample.dropped;
  if (count_ < s_.window_samples ||
      sample.ended - start_ < std::chrono::milliseconds(s_.window_ms)) {
    return limit_;
  }
  const limit_sample whole{rtt_sum_ / count_, inflight_, dropped_, sample.ended};
  rtt_sum_ = 0;
  count_ = inflight_ = 0;
  dropped_ = false;
  return limit_ = inner_->update(whole);
}

void windowed_limit::configure(const limiter_settings& s) {
  s_ = s;
  inner_->configure(s);
  limit_ = inner_->limit();
}

std::unique_ptr<limit_algorithm> make_limit_algorithm(const limiter_settings& s) {
  std::unique_ptr<limit_algorithm> inner;
  if (s.algorithm == "aimd") inner = std::make_unique<aimd_limit>(s);
  if (s.algorithm == "gradient2") inner = std::make_unique<gradient2_limit>(s);
  if (s.algorithm == "vegas") inner = std::make_unique<vegas_limit>(s);
  if (!inner) return nullptr;
  return std::make_unique<windowed_limit>(s, std::move(inner));
}

}  // namespace stampede
