#pragma once
/// \file Admission: whether one more request may start, or gets a 503 at once. Every mode's
/// limit (bounded's workers and queue, thread_per_request's ceiling, coroutine's max_tasks) is
/// one of these, so a limit that finds its own bound can take the place of a fixed one.

#include <atomic>
#include <chrono>

namespace stampede {

/// \brief A limit on requests admitted and not yet ended. Thread-safety: every member may be
/// called from any thread.
class admission {
 public:
  virtual ~admission() = default;
  /// Takes a place if there is one; false: the request is refused (the policy says why).
  virtual bool try_acquire() = 0;
  /// Gives back a place taken by try_acquire, when its request has ended: how long it held
  /// the place, and whether it ended well (what a limit that adapts learns from).
  virtual void release(std::chrono::steady_clock::duration held, bool ok) = 0;
  /// The limit now (0: none), and the places taken.
  virtual int limit() const = 0;
  virtual int in_use() const = 0;
};

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
