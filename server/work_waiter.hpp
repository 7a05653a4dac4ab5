#pragma once
/// \file The connection a request's work is for, as the work sees it.

#include <memory>

#include "server/task.hpp"

namespace stampede {

/// What the connection learns once its request's work has ended.
struct work_outcome {
  std::shared_ptr<const task> t;  ///< times, for the wasted-work count
  response answer;                ///< the body's answer, or the rejection's 503
};

/// \brief The connection a request's work is for, as the work sees it. Every call is on the
/// connection's executor.
class work_waiter {
 public:
  /// The work is under way elsewhere: watch for the client leaving until work_done.
  virtual void work_under_way() = 0;
  /// A policy that cannot watch asks whether the client has already gone (task::
  /// client_already_gone); if so the connection counts it gone since `since`.
  virtual bool client_already_gone(steady::time_point since) = 0;
  /// The work has ended: called once.
  virtual void work_done(work_outcome done) = 0;

 protected:
  ~work_waiter() = default;
};

}  // namespace stampede
