#pragma once
/// \file What a mode that starts tasks as jobs is told when each ends.

namespace stampede {

class task;

/// \brief A mode that keeps track of the tasks it started as jobs: told when each ends,
/// before the task completes (so the task is still alive), on the thread that ended it.
class task_host {
 public:
  virtual void task_ended(task& t) noexcept = 0;

 protected:
  ~task_host() = default;
};

}  // namespace stampede
