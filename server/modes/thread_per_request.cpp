#include "server/modes/thread_per_request.hpp"

#include <atomic>
#include <system_error>
#include <thread>
#include <vector>

namespace stampede {

namespace {
/// A thread frees up as soon as any request ends: a client may try again a second later.
constexpr int retry_after_s = 1;

/// 5 µs to 100 ms: a thread's creation, from the usual tens of microseconds to a machine that
/// struggles.
std::vector<double> spawn_buckets() {
  return {0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
          0.001,    0.0025,  0.005,    0.01,    0.025,  0.05,    0.1};
}
}  // namespace

int thread_per_fetch(int count, std::chrono::milliseconds each, downstream* ds,
                     std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                     call_outcome* failure) {
  std::atomic<int> completed = 0;
  std::atomic<call_outcome> first_failure = call_outcome::ok;
  auto fetch = [&] {
    call_outcome o = call_outcome::ok;
    if (ds != nullptr && ds->remote != nullptr) {
      o = call_blocking(*ds->remote, static_cast<int>(each.count()), deadline_or_never(deadline),
                        stop);
    } else if (!(ds != nullptr ? ds->call(each, stop) : simulated_io(each, stop))) {
      o = call_outcome::cancelled;
    }
    if (o == call_outcome::ok) {
      completed.fetch_add(1);
    } else {
      auto none = call_outcome::ok;
      first_failure.compare_exchange_strong(none, o);
    }
  };
  std::vector<std::jthread> threads;
  threads.reserve(count);
  int inline_runs = 0;
  for (int i = 0; i < count; ++i) {
    try {
      threads.emplace_back(fetch);
    } catch (const std::system_error&) {
      ++inline_runs;  // the OS refused a thread: do this fetch ourselves after the others
    }
  }
  for (int i = 0; i < inline_runs; ++i) fetch();
  threads.clear();  // joins
  if (failure != nullptr && first_failure.load() != call_outcome::cancelled) {
    *failure = first_failure.load();
  }
  return completed.load();
}

job<int> thread_per_request_policy::fetch_per_thread::fan_out(
    int count, std::chrono::milliseconds each, const work_context& ctx,
    std::chrono::steady_clock::time_point deadline, call_outcome* failure) {
  co_return thread_per_fetch(count, each, ctx.dependency, deadline, ctx.stop, failure);
}

thread_per_request_policy::thread_per_request_policy(const config& c, metrics& m)
    : execution_policy(mode_kind::thread_per_request),
      spawn_seconds_(m.own_histogram("stampede_thread_spawn_seconds",
                                     "Time to create a request thread (thread-per-request mode)",
                                     spawn_buckets())),
      shutting_down_(
          m.for_mode(mode_kind::thread_per_request).rejection_for(common_reason::shutting_down)),
      spawn_failed_(m.for_mode(mode_kind::thread_per_request).rejection_for("spawn_failed")),
      ceiling_(c.thread_per_request.max_threads,
               &m.for_mode(mode_kind::thread_per_request).rejection_for("thread_ceiling"),
               c.limiter, m.for_mode(mode_kind::thread_per_request)),
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
    t->reject(shutting_down_);
    return;
  }
  if (cancel_on_disconnect_.load() && t->client_already_gone(steady::now())) {
    // Sent, then closed: not handed over at all. A thread started for it could only be
    // stopped once it had been scheduled, and in a burst that takes milliseconds each.
    t->cancel_queued();
    return;
  }
  // The place is given back when the task ends, a few microseconds before its thread does:
  // the ceiling bounds requests with a thread, as every mode's limit bounds its requests.
  if (const rejection* why = t->admit(ceiling_)) {
    t->reject(*why, retry_after_s);
    return;
  }
  {
    std::lock_guard lock(live_mutex_);
    ++live_;
    running_.insert(t);
  }
  auto begin = steady::now();
  try {
    std::thread([this, t]() mutable {
      t->run({.wait = &waits_, .owner = this});
      {
        std::lock_guard lock(live_mutex_);
        running_.erase(t);
      }
      // The task goes before the thread counts as ended: what it holds (a lab's helper state)
      // must not outlive the policy's destructor, which waits for that count.
      t.reset();
      std::lock_guard lock(live_mutex_);
      if (--live_ == 0) live_cv_.notify_all();
    }).detach();
    spawn_seconds_.Observe(std::chrono::duration<double>(steady::now() - begin).count());
  } catch (const std::system_error&) {
    {
      std::lock_guard lock(live_mutex_);
      running_.erase(t);
      if (--live_ == 0) live_cv_.notify_all();
    }
    t->reject(spawn_failed_, retry_after_s);
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
