#include "server/modes/thread_per_request.hpp"

#include <system_error>
#include <thread>

namespace stampede {

namespace {
/// A thread frees up as soon as any request ends: a client may try again a second later.
constexpr int retry_after_s = 1;
}  // namespace

thread_per_request_policy::thread_per_request_policy(const config& c, metrics& m)
    : all_metrics_(m),
      ceiling_(c.thread_per_request.max_threads, c.limiter,
               m.for_mode(mode_kind::thread_per_request)),
      cancel_on_disconnect_(c.thread_per_request.cancel_on_disconnect) {}

thread_per_request_policy::~thread_per_request_policy() {
  // What still runs has outlived every request (leaked child work): halted, it ends.
  halt();
  std::unique_lock lock(live_mutex_);
  for (auto& t : running_) t->request_stop();
  live_cv_.wait(lock, [&] { return live_ == 0; });
}

void thread_per_request_policy::submit(std::shared_ptr<task> t) {
  if (stopping_.load()) {
    t->reject(reject_reason::shutting_down);
    return;
  }
  if (cancel_on_disconnect_.load() && t->client_already_gone(steady::now())) {
    // Sent, then closed: not handed over at all. A thread started for it could only be
    // stopped once it had been scheduled, and in a burst that takes milliseconds each.
    t->cancel_queued();
    return;
  }
  // The ceiling bounds threads, so a place is held for the thread's whole life (until it has
  // let go of its task), not only for the task's.
  if (auto r = ceiling_.try_acquire(); r != admit_result::admitted) {
    t->reject(r == admit_result::full ? reject_reason::thread_ceiling : reject_reason::limit,
              retry_after_s);
    return;
  }
  {
    std::lock_guard lock(live_mutex_);
    ++live_;
    running_.insert(t);
  }
  auto begin = steady::now();
  try {
    std::thread([this, t, begin]() mutable {
      t->run({.fanout = &fanout_, .owner = this});
      const request_end how = t->how_it_ended();
      {
        std::lock_guard lock(live_mutex_);
        running_.erase(t);
      }
      // The task goes before the thread counts as ended: what it holds (a lab's helper state)
      // must not outlive the policy's destructor, which waits for that count.
      t.reset();
      ceiling_.release(steady::now() - begin, how);
      std::lock_guard lock(live_mutex_);
      if (--live_ == 0) live_cv_.notify_all();
    }).detach();
    all_metrics_.thread_spawn_seconds().Observe(
        std::chrono::duration<double>(steady::now() - begin).count());
  } catch (const std::system_error&) {
    {
      std::lock_guard lock(live_mutex_);
      running_.erase(t);
      if (--live_ == 0) live_cv_.notify_all();
    }
    ceiling_.release(steady::now() - begin, request_end::ignored);
    t->reject(reject_reason::spawn_failed, retry_after_s);
  }
}

void thread_per_request_policy::client_gone(const std::shared_ptr<task>& t) {
  if (cancel_on_disconnect_.load()) t->cancel_running();
}

void thread_per_request_policy::reconfigure(const config& c) {
  ceiling_.set_fixed(c.thread_per_request.max_threads);
  ceiling_.configure(c.limiter);
  cancel_on_disconnect_.store(c.thread_per_request.cancel_on_disconnect);
}

void thread_per_request_policy::stop_all() {
  halt();
  stopping_.store(true);
  std::lock_guard lock(live_mutex_);
  for (auto& t : running_) t->request_stop();
}

}  // namespace stampede
