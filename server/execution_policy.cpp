#include "server/execution_policy.hpp"

#include <algorithm>

#include "server/modes/blocking.hpp"
#include "server/modes/bounded_pool.hpp"
#include "server/modes/thread_per_request.hpp"

namespace stampede {

void task::mark_queued() {
  state expected = state::created;
  if (state_.compare_exchange_strong(expected, state::queued)) metrics_.tasks_queued->Increment();
}

bool task::leave_waiting(state to) {
  state s = state_.load();
  while (s == state::created || s == state::queued) {
    if (state_.compare_exchange_weak(s, to)) {
      if (s == state::queued) metrics_.tasks_queued->Decrement();
      return true;
    }
  }
  return false;
}

bool task::run(fanout_runner* fanout) {
  if (!leave_waiting(state::running)) return false;
  // cancel_running sets client_gone_ before it looks at the state, so either it saw
  // `running` (and stops the body) or the flag is visible here: no cancellation falls between.
  if (client_gone_.load()) {
    if (!cancel_counted_.exchange(true)) metrics_.cancelled_queued->Increment();
    result_ = error_response(503, "cancelled before it started: the client left");
    state_.store(state::cancelled);
    complete();
    return true;
  }
  metrics_.tasks_running->Increment();
  metrics_.tasks_started->Increment();
  started_ = steady::now();
  try {
    result_ = body_(work_context{stop_.get_token(), fanout, to_string(mode_), dependency_});
  } catch (const std::exception& e) {
    result_ = error_response(500, e.what());
  }
  finished_ = steady::now();
  metrics_.tasks_running->Decrement();
  state_.store(state::done);
  complete();
  return true;
}

bool task::reject(reject_reason why, int retry_after_s) {
  if (!leave_waiting(state::done)) return false;
  rejected_ = why;
  retry_after_s_ = retry_after_s;
  metrics_.rejected[static_cast<int>(why)]->Increment();
  complete();
  return true;
}

bool task::cancel_queued() {
  if (!leave_waiting(state::cancelled)) return false;
  metrics_.cancelled_queued->Increment();
  complete();
  return true;
}

void task::cancel_running() {
  client_gone_.store(true);
  stop_.request_stop();
  if (state_.load() == state::running && !cancel_counted_.exchange(true)) {
    metrics_.cancelled_running->Increment();
  }
}

void task::complete() {
  if (on_done) on_done();
}

double task::wasted_after(steady::time_point client_left) const {
  if (!started_ || !finished_) return 0;
  auto from = std::max(*started_, client_left);
  if (*finished_ <= from) return 0;
  return std::chrono::duration<double>(*finished_ - from).count();
}

std::unique_ptr<execution_policy> make_policy(const config& c, metrics& m) {
  switch (c.mode) {
    case mode_kind::blocking:
      return std::make_unique<blocking_policy>();
    case mode_kind::thread_per_request:
      return std::make_unique<thread_per_request_policy>(c, m);
    case mode_kind::bounded:
      return std::make_unique<bounded_pool_policy>(c, m);
  }
  return nullptr;
}

}  // namespace stampede
