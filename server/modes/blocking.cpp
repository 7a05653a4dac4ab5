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
  {
    std::lock_guard current(current_mutex_);
    current_ = t;
  }
  t->run(&fanout_);
  std::lock_guard current(current_mutex_);
  current_.reset();
}

void blocking_policy::stop_all() {
  halt();
  stopping_.store(true);
  std::lock_guard current(current_mutex_);
  if (current_) current_->request_stop();
}

}  // namespace stampede
