#pragma once
/// \file A retry budget: retries at most a fixed share of calls, as Finagle's RetryBudget and
/// Envoy's retry budget do, so that retries cannot multiply the load on a dependency that is
/// already failing.

#include <mutex>

namespace stampede {

/// \brief Each first attempt earns `percent`/100 of a retry; each retry spends one. The
/// balance starts at, and never exceeds, `reserve` retries (or the percent of 100 calls if
/// that is more), so a quiet period cannot save up a burst. Percent 0: no budget (every
/// retry allowed). Thread-safety: every member may be called from any thread at once.
class retry_budget {
 public:
  static constexpr double reserve = 3;  ///< Envoy's min_retry_concurrency

  explicit retry_budget(int percent = 0) { set_percent(percent); }

  void set_percent(int percent);
  /// A first attempt: earns its share.
  void deposit();
  /// Whether a retry may go now; if so, it is paid for.
  bool try_withdraw();
  double balance() const;

 private:
  mutable std::mutex mutex_;
  int percent_ = 0;
  double balance_ = reserve;
  double cap_ = reserve;
};

}  // namespace stampede
