#include "handlers/downstream.hpp"

#include <condition_variable>

#include "handlers/work.hpp"

namespace stampede {

/// One call waiting for a slot on its own thread. The granter sets `is_granted` and notifies
/// under the mutex, so the waiter cannot return (and destroy this) before that is done.
struct downstream::blocked_waiter final : downstream::waiter {
  std::condition_variable_any cv;
  bool is_granted = false;
  void granted() override {
    is_granted = true;
    cv.notify_one();
  }
};

void downstream::grant_locked() {
  while (!waiters_.empty() && has_room_locked()) {
    waiter* w = waiters_.front();
    waiters_.pop_front();
    w->in_line_ = false;
    ++in_use_;
    if (on_wait) {
      on_wait(std::chrono::duration<double>(std::chrono::steady_clock::now() - w->since_).count());
    }
    w->granted();
  }
}

bool downstream::try_acquire() {
  std::lock_guard lock(mutex_);
  if (!waiters_.empty() || !has_room_locked()) return false;
  ++in_use_;
  if (on_wait) on_wait(0);
  return true;
}

bool downstream::acquire(const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  if (stop.stop_requested()) return false;
  if (waiters_.empty() && has_room_locked()) {
    ++in_use_;
    lock.unlock();
    if (on_wait) on_wait(0);
    return true;
  }
  blocked_waiter w;
  w.since_ = std::chrono::steady_clock::now();
  w.place_ = waiters_.insert(waiters_.end(), &w);
  w.in_line_ = true;
  w.cv.wait(lock, stop, [&] { return w.is_granted; });
  if (!w.is_granted) {
    waiters_.erase(w.place_);  // stopped while waiting: leave the line, holding nothing
    return false;
  }
  return true;
}

downstream::wait_result downstream::acquire_or_wait(waiter& w, const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  // Checked under the lock: a stop requested later finds `w` in line (cancel_wait).
  if (stop.stop_requested()) return wait_result::stopped;
  if (waiters_.empty() && has_room_locked()) {
    ++in_use_;
    lock.unlock();
    if (on_wait) on_wait(0);
    return wait_result::granted;
  }
  w.since_ = std::chrono::steady_clock::now();
  w.place_ = waiters_.insert(waiters_.end(), &w);
  w.in_line_ = true;
  return wait_result::waiting;
}

bool downstream::cancel_wait(waiter& w) {
  std::lock_guard lock(mutex_);
  if (!w.in_line_) return false;
  waiters_.erase(w.place_);
  w.in_line_ = false;
  return true;
}

void downstream::release() {
  std::lock_guard lock(mutex_);
  --in_use_;
  grant_locked();
}

bool downstream::call(std::chrono::milliseconds hold, const std::stop_token& stop) {
  if (!acquire(stop)) return false;
  bool finished = simulated_io(hold, stop);
  release();
  return finished;
}

void downstream::set_capacity(int capacity) {
  std::lock_guard lock(mutex_);
  capacity_ = capacity;
  grant_locked();
}

downstream::snapshot downstream::stats() const {
  std::lock_guard lock(mutex_);
  return {capacity_, in_use_, static_cast<int>(waiters_.size())};
}

}  // namespace stampede
