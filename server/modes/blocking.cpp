#include "server/modes/blocking.hpp"

namespace stampede {

void blocking_policy::submit(std::shared_ptr<task> t) {
  t->mark_queued();  // waiting for the lock (only visible with more than one I/O thread)
  std::unique_lock lock(one_at_a_time_);
  if (stopping_.load()) {
    lock.unlock();
    t->reject(reject_reason::shutting_down);
    return;
  }
  t->run(&fanout_);
}

void blocking_policy::stop_all() {
  stopping_.store(true);
}

}  // namespace stampede
