#include "server/execution_policy.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "server/modes/blocking.hpp"
#include "server/modes/bounded_pool.hpp"
#include "server/modes/coroutine.hpp"
#include "server/modes/thread_per_request.hpp"

namespace stampede {

const rejection* task::admit(admission& limit) {
  if (const rejection* why = limit.try_acquire(criticality_)) return why;
  admitted_by_ = &limit;
  admitted_at_ = steady::now();
  return nullptr;
}

request_end task::how_it_ended() const {
  if (client_gone_.load() || state_.load() == state::cancelled) return request_end::ignored;
  if (rejected_ != nullptr) return rejected_->dropped ? request_end::dropped : request_end::ignored;
  // A 503 or 504 from the work is the dependency's overload or a deadline reached: the signal
  // a limit must back off on. Other failures say nothing of the load.
  if (result_.status == 503 || result_.status == 504) return request_end::dropped;
  return result_.status < 500 ? request_end::ok : request_end::ignored;
}

void task::complete() {
  if (admission* limit = std::exchange(admitted_by_, nullptr)) {
    limit->release(steady::now() - admitted_at_, how_it_ended());
  }
  completed();
}

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

namespace {
job<response> call_sync(task::sync_body_fn f, const work_context& ctx) {
  co_return f(ctx);
}
}  // namespace

task::task(sync_body_fn body, mode_kind mode, mode_metrics& m, downstream* dependency)
    : task(body_fn([f = std::move(body)](const work_context& ctx) { return call_sync(f, ctx); }),
           mode, m, dependency) {}

bool task::cancelled_before_start() {
  // cancel_running sets client_gone_ before it looks at the state, so either it saw
  // `running` (and stops the body) or the flag is visible here: no cancellation falls between.
  if (!client_gone_.load()) return false;
  if (!cancel_counted_.exchange(true)) metrics_.cancelled_queued->Increment();
  result_ = error_response(503, "cancelled before it started: the client left", "cancelled",
                           metrics_.name);
  state_.store(state::cancelled);
  if (host_ != nullptr) host_->task_ended(*this);
  complete();
  return true;
}

void task::began() {
  metrics_.tasks_running->Increment();
  metrics_.tasks_started->Increment();
  started_ = steady::now();
}

void task::ended() {
  finished_ = steady::now();
  metrics_.tasks_running->Decrement();
  state_.store(state::done);
  complete();
}

namespace {

/// Child work (child_spawner): a task of its own with no connection, that keeps itself alive
/// until it has ended, however the policy ends it.
class child_task final : public task {
 public:
  using task::task;
  std::shared_ptr<child_task> self;

 protected:
  void completed() override {
    auto last = std::move(self);  // may end this task's life, on the way out
  }
};

job<response> run_child(child_spawner::child_fn make, const work_context& ctx) {
  co_await make(ctx);
  co_return response{};
}

}  // namespace

void task::spawn(child_fn make) {
  auto child = std::make_shared<child_task>(
      body_fn([make = std::move(make)](const work_context& ctx) { return run_child(make, ctx); }),
      mode_, metrics_, dependency_);
  child->self = child;
  owner_->submit_child(std::move(child));
}

bool task::run(const run_env& env) {
  if (!leave_waiting(state::running)) return false;
  host_ = env.host;
  if (env.owner != nullptr) {
    owner_ = env.owner;
    halt_ = env.owner->halt_token();
  }
  if (cancelled_before_start()) return true;
  began();
  start_job(env.wait);
  return true;
}

void task::start_job(waits* w) {
  child_spawner* children = owner_ != nullptr ? this : nullptr;
  context_ = work_context{stop_.get_token(), w, metrics_.name, dependency_, halt_, children};
  try {
    job_ = body_(context_);
  } catch (const std::exception& e) {
    result_ = error_response(500, e.what(), "internal_error", metrics_.name);
    if (host_ != nullptr) host_->task_ended(*this);
    ended();
    return;
  }
  job_.start(&task::job_finished, this);
}

void task::job_finished(void* self) {
  auto* t = static_cast<task*>(self);
  try {
    t->result_ = t->job_.take();
  } catch (const std::exception& e) {
    t->result_ = error_response(500, e.what(), "internal_error", t->metrics_.name);
  }
  if (t->host_ != nullptr) t->host_->task_ended(*t);
  t->ended();  // may end the task's life: the last thing done here
}

bool task::reject(const rejection& why, int retry_after_s) {
  if (!leave_waiting(state::done)) return false;
  rejected_ = &why;
  retry_after_s_ = retry_after_s;
  why.counted->Increment();
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
  // Counted before the stop is asked for: once it is, the body may end (and the task be done)
  // before this thread looks at the state again, and a cancellation that stopped it would go
  // uncounted.
  if (state_.load() == state::running && !cancel_counted_.exchange(true)) {
    metrics_.cancelled_running->Increment();
  }
  stop_.request_stop();
}

double task::wasted_after(steady::time_point client_left) const {
  if (!started_ || !finished_) return 0;
  auto from = std::max(*started_, client_left);
  if (*finished_ <= from) return 0;
  return std::chrono::duration<double>(*finished_ - from).count();
}

}  // namespace stampede

namespace stampede {

limiter::limiter(int fixed, const rejection* when_full, const limiter_settings& s, mode_metrics& m)
    : fixed_(fixed),
      metrics_(m),
      when_full_(when_full),
      over_limit_(m.rejection_for(common_reason::limit)),
      shed_(m.rejection_for(common_reason::shed)) {
  configure(s);
}

const rejection* limiter::try_acquire(criticality c) {
  const int share = share_[static_cast<int>(c)].load(std::memory_order_relaxed);
  const auto refused = [&](const rejection* why) {
    metrics_.admissions[static_cast<int>(c)][1]->Increment();
    return why;
  };
  int used = in_use_.load(std::memory_order_relaxed);
  // Checked and taken in one step, so neither limit is overshot by concurrent callers.
  do {
    const int adaptive = adaptive_.load(std::memory_order_relaxed);
    const int fixed = when_full_ != nullptr ? fixed_.load(std::memory_order_relaxed) : 0;
    if (fixed > 0 && used >= fixed) return refused(when_full_);
    if (adaptive > 0 && used >= adaptive) return refused(&over_limit_);
    // Near the limit in force, a lower criticality finds its share used up: the places above
    // it are kept for the more critical (a mode with no limit sheds nothing).
    const int in_force = adaptive == 0 ? fixed : fixed == 0 ? adaptive : std::min(adaptive, fixed);
    if (share < 100 && in_force > 0 && used >= in_force * share / 100) return refused(&shed_);
  } while (!in_use_.compare_exchange_weak(used, used + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
  metrics_.limit_inflight->Set(used + 1);
  metrics_.admissions[static_cast<int>(c)][0]->Increment();
  return nullptr;
}

void limiter::release(std::chrono::steady_clock::duration held, request_end how) {
  const int inflight = in_use_.fetch_sub(1, std::memory_order_acq_rel);
  metrics_.limit_inflight->Set(inflight - 1);
  // A client that left says nothing of the load (Netflix stopped counting those as drops:
  // they pulled the limit down for no reason). Nor does a time under 100 µs: an answer that
  // never waited (a health check) would pass for the no-load time of the real work.
  if (how == request_end::ignored || adaptive_.load(std::memory_order_relaxed) == 0) return;
  const double ms = std::chrono::duration<double, std::milli>(held).count();
  if (how == request_end::ok && ms < 0.1) return;
  std::lock_guard lock(mutex_);
  if (!algorithm_) return;
  const double next = algorithm_->update(
      {ms, inflight, how == request_end::dropped, std::chrono::steady_clock::now()});
  adaptive_.store(std::max(1, static_cast<int>(std::lround(next))), std::memory_order_relaxed);
  publish();
}

int limiter::limit() const {
  const int adaptive = adaptive_.load(std::memory_order_relaxed);
  const int fixed = fixed_.load(std::memory_order_relaxed);
  if (adaptive == 0) return fixed;
  return fixed == 0 ? adaptive : std::min(adaptive, fixed);
}

void limiter::set_fixed(int fixed) {
  fixed_.store(fixed, std::memory_order_relaxed);
  publish();
}

void limiter::configure(const limiter_settings& s) {
  share_[static_cast<int>(criticality::sheddable)] = s.sheddable_share;
  share_[static_cast<int>(criticality::sheddable_plus)] = s.sheddable_plus_share;
  share_[static_cast<int>(criticality::critical)] = s.critical_share;
  share_[static_cast<int>(criticality::critical_plus)] = 100;
  std::lock_guard lock(mutex_);
  if (s.algorithm == "none") {
    algorithm_.reset();
    adaptive_.store(0, std::memory_order_relaxed);
  } else {
    if (algorithm_ && s.algorithm == algorithm_name_) {
      algorithm_->configure(s);
    } else {
      algorithm_ = make_limit_algorithm(s);
      algorithm_name_ = s.algorithm;
    }
    adaptive_.store(std::max(1, static_cast<int>(std::lround(algorithm_->limit()))),
                    std::memory_order_relaxed);
  }
  publish();
}

void limiter::publish() {
  metrics_.limit->Set(limit());
}

}  // namespace stampede

namespace stampede {

std::unique_ptr<execution_policy> make_policy(const config& c, metrics& m) {
  switch (c.mode) {
    case mode_kind::blocking:
      return std::make_unique<blocking_policy>(c, m);
    case mode_kind::thread_per_request:
      return std::make_unique<thread_per_request_policy>(c, m);
    case mode_kind::bounded:
      return std::make_unique<bounded_pool_policy>(c, m);
    case mode_kind::coroutine:
      return std::make_unique<coroutine_policy>(c, m);
  }
  return nullptr;
}

}  // namespace stampede
