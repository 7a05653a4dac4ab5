#pragma once
/// \file Every open main-port connection, as shutdown sees them.

#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "server/drainable.hpp"

namespace stampede {

/// \brief Every open main-port connection, so that shutdown can wake the idle ones and wait
/// until each has answered or closed (a request still unread when the process exits would be
/// reset by the kernel). A lock per connection opened and closed, none per request.
class connection_list {
 public:
  using handle = std::list<std::weak_ptr<drainable>>::iterator;
  handle add(std::weak_ptr<drainable> c) {
    std::lock_guard lock(mutex_);
    return all_.insert(all_.end(), std::move(c));
  }
  void remove(handle h) {
    std::lock_guard lock(mutex_);
    all_.erase(h);
  }
  /// Calls wake_for_drain on every connection still open.
  void wake_all() {
    std::vector<std::shared_ptr<drainable>> open;
    {
      std::lock_guard lock(mutex_);
      for (auto& w : all_) {
        if (auto c = w.lock()) open.push_back(std::move(c));
      }
    }
    for (auto& c : open) {
      drainable* d = c.get();
      d->wake_for_drain(std::move(c));
    }
  }

 private:
  std::mutex mutex_;
  std::list<std::weak_ptr<drainable>> all_;
};

}  // namespace stampede
