#pragma once
/// \file A shared_ptr swapped by one thread while others copy it: the live config and policy.

#include <memory>
#include <mutex>

namespace stampede {

/// \brief A shared_ptr that one thread replaces while others copy it, under a mutex.
/// (libstdc++ 12's std::atomic<std::shared_ptr> unlocks a load with a relaxed store, so a load
/// does not happen-before the next store: ThreadSanitizer rightly reports the pointer's read and
/// write as a race.) Readers copy it only when `front_end::generation` has changed.
template <class T>
class shared_slot {
 public:
  explicit shared_slot(std::shared_ptr<T> p) : p_(std::move(p)) {}
  std::shared_ptr<T> load() const {
    std::lock_guard lock(mutex_);
    return p_;
  }
  void store(std::shared_ptr<T> p) {
    std::lock_guard lock(mutex_);
    p_.swap(p);  // the old one is released after the lock, in p's destructor
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<T> p_;
};

}  // namespace stampede
