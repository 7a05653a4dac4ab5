#include "handlers/downstream.hpp"

#include <condition_variable>

#include "handlers/work.hpp"

namespace stampede {

/// One call waiting for a slot. The granter sets `granted` and notifies under the mutex, so
/// the waiter cannot return (and destroy this) before the notification is done.
struct downstream::waiter {
  std::condition_variable_any cv;
  bool granted = false;
};

void downstream::grant_locked() {
  while (!waiters_.empty() && has_room_locked()) {
    waiter* w = waiters_.front();
    waiters_.pop_front();
    ++in_use_;
    w->granted = true;
    w->cv.notify_one();
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
  auto since = std::chrono::steady_clock::now();
  waiter w;
  auto place = waiters_.insert(waiters_.end(), &w);
  w.cv.wait(lock, stop, [&] { return w.granted; });
  if (!w.granted) {
    waiters_.erase(place);  // stopped while waiting: leave the line, holding nothing
    return false;
  }
  lock.unlock();
  if (on_wait)
    on_wait(std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
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
