#pragma once
/// \file The limit every mode has today: a number set by the config.

#include <atomic>

#include "server/admission.hpp"

namespace stampede {

/// \brief A fixed limit, changed only by a reload (set_limit); 0 admits everything.
class fixed_limit final : public admission {
 public:
  explicit fixed_limit(int limit) : limit_(limit) {}
  bool try_acquire() override;
  void release(std::chrono::steady_clock::duration, bool) override {
    in_use_.fetch_sub(1, std::memory_order_acq_rel);
  }
  int limit() const override { return limit_.load(std::memory_order_relaxed); }
  int in_use() const override { return in_use_.load(std::memory_order_relaxed); }
  /// A lower limit refuses new requests until enough of those admitted have ended.
  void set_limit(int limit) { limit_.store(limit, std::memory_order_relaxed); }

 private:
  std::atomic<int> limit_;
  std::atomic<int> in_use_{0};
};

}  // namespace stampede
