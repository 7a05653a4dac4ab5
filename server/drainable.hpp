#pragma once
/// \file A main-port connection as shutdown sees it.

#include <memory>

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

}  // namespace stampede
