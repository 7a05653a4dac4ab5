#pragma once
/// \file A main-port connection, and every open one, as shutdown sees them.

#include <list>
#include <memory>
#include <mutex>
#include <vector>

namespace stampede {

/// \brief A main-port connection as shutdown sees it.
class drainable {
 public:
  /// Shutdown has begun: a connection waiting idle for its next request stops waiting and
  /// drains (503 if a request is already there, else a graceful close). Busy ones drain when
  /// their answer is written. Safe to call from any thread (it posts to the connection);
  /// `self` is this connection, handed to the posted work so that the connection's last
  /// reference is let go on its own executor, not on the caller's thread.
  virtual void wake_for_drain(std::shared_ptr<drainable> self) = 0;

 protected:
  ~drainable() = default;
};

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
