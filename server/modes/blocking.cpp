#include "server/modes/blocking.hpp"

namespace stampede {

namespace {
/// Work run inline cannot be watched while it runs, so the client is looked for afterwards,
/// but only after work that ran this long: the look is a system call, a large share of the CPU
/// of a request that does nothing (/healthz). Shorter work wastes less than the look would cost;
/// its answer is written to a closed connection, and the connection ends at its next read.
constexpr auto departure_check_after = std::chrono::milliseconds(1);
/// The lock frees up as soon as the request holding it ends: a client may try again a second
/// later.
constexpr int retry_after_s = 1;
}  // namespace

blocking_policy::blocking_policy(const config& c, metrics& m)
    : execution_policy(mode_kind::blocking),
      shutting_down_(m.for_mode(mode_kind::blocking).rejection_for(common_reason::shutting_down)),
      places_(0, nullptr, c.limiter, m.for_mode(mode_kind::blocking)) {}

void blocking_policy::submit(std::shared_ptr<task> t) {
  if (const rejection* why = t->admit(places_)) {
    t->reject(*why, retry_after_s);
    return;
  }
  t->mark_queued();  // waiting for the lock (only visible with more than one I/O thread)
  std::unique_lock lock(one_at_a_time_);
  if (stopping_.load()) {
    lock.unlock();
    t->reject(shutting_down_);
    return;
  }
  {
    std::lock_guard current(current_mutex_);
    current_ = t;
  }
  t->run({.wait = &waits_, .owner = this});
  {
    std::lock_guard current(current_mutex_);
    current_.reset();
  }
  lock.unlock();
  if (t->started() && t->finished() && *t->finished() - *t->started() >= departure_check_after) {
    // Gone at some point while nobody could watch: all of its work counts as wasted.
    t->client_already_gone(t->admitted());
  }
}

void blocking_policy::stop_all() {
  halt();
  stopping_.store(true);
  std::lock_guard current(current_mutex_);
  if (current_) current_->request_stop();
}

}  // namespace stampede
