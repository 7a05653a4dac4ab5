#pragma once
/// \file The simulated dependency every /work/io call and fan-out fetch goes through: a
/// database behind a pool of `capacity` connections, or a service with its own concurrency
/// limit. Knows nothing of Asio.
///
/// What it models: finite capacity. At most `capacity` calls hold a slot at once; a call
/// beyond that waits, first come first served, for a slot, then holds it for its duration.
/// Unbounded concurrency upstream therefore raises no throughput past capacity / duration:
/// it only lengthens this queue. What it leaves out: a real dependency also slows down as it
/// gets busier (lock contention, cache misses, its own queueing), fails, and times calls out;
/// this one serves every call in exactly its duration once it has a slot.

#include <chrono>
#include <functional>
#include <list>
#include <mutex>
#include <stop_token>

namespace stampede {

class remote_dependency;

/// \brief A pool of slots with a FIFO wait and cancellable waiting and holding.
/// Thread-safety: every member may be called from any thread at once.
class downstream {
 public:
  /// `capacity` 0 means unlimited (no call ever waits).
  explicit downstream(int capacity = 0) : capacity_(capacity) {}
  downstream(const downstream&) = delete;
  downstream& operator=(const downstream&) = delete;

  /// One call: waits for a slot, holds it for `hold`, frees it. Returns false, having freed
  /// whatever it held, if `stop` is requested while it waits or holds.
  bool call(std::chrono::milliseconds hold, const std::stop_token& stop);

  /// Waits, FIFO, for a slot. Returns false (holding nothing) if `stop` is requested first.
  bool acquire(const std::stop_token& stop);
  /// Takes a slot only if one is free and nobody is waiting (keeps the order fair).
  bool try_acquire();

  /// \brief One call waiting in line without holding a thread (the coroutine mode). The
  /// downstream calls granted() from the thread that frees the slot, under its lock: it must
  /// only hand the waiter on (e.g. post its resumption), never call back into the downstream.
  class waiter {
   public:
    virtual void granted() = 0;

   protected:
    ~waiter() = default;

   private:
    friend class downstream;
    std::list<waiter*>::iterator place_;
    std::chrono::steady_clock::time_point since_;
    bool in_line_ = false;  ///< guarded by the downstream's mutex
  };
  enum class wait_result { granted, waiting, stopped };
  /// Takes a slot at once (granted), puts `w` in line (waiting: w.granted() follows once it
  /// has a slot, unless cancel_wait takes it out first), or refuses (stopped) if `stop` has been
  /// requested. `w` must stay alive while it waits.
  wait_result acquire_or_wait(waiter& w, const std::stop_token& stop);
  /// Takes `w` out of the line; false if it was granted first (it then holds a slot).
  bool cancel_wait(waiter& w);
  /// Frees a slot taken by acquire or try_acquire; hands it to the oldest waiter.
  void release();

  /// Applies a new capacity live (0 = unlimited). A raise lets waiters in at once; a cut
  /// lets calls holding slots finish, and admits no one until in_use is below it.
  void set_capacity(int capacity);

  struct snapshot {
    int capacity = 0;  ///< 0 = unlimited
    int in_use = 0;    ///< calls holding a slot
    int waiting = 0;   ///< calls waiting for one
  };
  snapshot stats() const;

  /// Called with each call's wait for a slot, in seconds (once per granted acquire). Set once,
  /// before the downstream is used.
  std::function<void(double)> on_wait;
  /// The real dependency that calls go to instead of this simulation (downstream.url), with
  /// its own pool; null: simulated. Set once, before the downstream is used.
  remote_dependency* remote = nullptr;

 private:
  struct blocked_waiter;
  bool has_room_locked() const { return capacity_ == 0 || in_use_ < capacity_; }
  void grant_locked();

  mutable std::mutex mutex_;  ///< guards everything below
  int capacity_;
  int in_use_ = 0;
  std::list<waiter*> waiters_;  ///< oldest first; each lives on its caller's stack
};

}  // namespace stampede
