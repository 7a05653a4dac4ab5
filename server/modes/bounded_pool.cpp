#include "server/modes/bounded_pool.hpp"

#include <sched.h>

#include <algorithm>

namespace stampede {

bounded_pool_policy::bounded_pool_policy(const config& c, metrics& m)
    : execution_policy(mode_kind::bounded),
      depth_gauge_(m.own_gauge("stampede_queue_depth", "Bounded mode: work waiting in the queue",
                               "queue_depth")),
      capacity_gauge_(
          m.own_gauge("stampede_queue_capacity", "Bounded mode: queue capacity", "queue_capacity")),
      workers_gauge_(
          m.own_gauge("stampede_pool_workers", "Bounded mode: worker threads", "pool_workers")),
      queue_wait_(m.own_histogram("stampede_queue_wait_seconds",
                                  "Bounded mode: admission until a worker takes the work",
                                  metrics::duration_buckets())),
      shutting_down_(m.for_mode(mode_kind::bounded).rejection_for(common_reason::shutting_down)),
      timed_out_(m.for_mode(mode_kind::bounded).rejection_for("queue_timeout", true)),
      // The fixed limit is set once the workers are made (resize_locked); until then, one.
      places_(1, &m.for_mode(mode_kind::bounded).rejection_for("queue_full"), c.limiter,
              m.for_mode(mode_kind::bounded)),
      waits_(c.bounded.fanout_limit) {
  m.add_own_chart(
      {"queue",
       "Queue depth vs capacity (bounded)",
       "A queue pinned at capacity: the excess is answered 503 queue_full, no worker touched.",
       {{"queued", "queue_depth"}, {"capacity", "queue_capacity"}, {"workers", "pool_workers"}}});
  std::lock_guard lock(mutex_);
  configure_locked(c);
  threads_.emplace_back([this] { supervisor_loop(); });
  resize_locked(c.bounded.workers);
  capacity_gauge_.Set(capacity_);
  publish_depth_locked();
}

bounded_pool_policy::~bounded_pool_policy() {
  halt();
  std::deque<entry> left;
  {
    std::lock_guard lock(mutex_);
    exiting_ = stopping_ = true;
    left.swap(queue_);
    publish_depth_locked();
    for (auto& t : running_) t->request_stop();
    work_signal_.release(live_workers_ + 1);  // every worker wakes and sees exiting_
  }
  supervisor_cv_.notify_all();
  for (auto& e : left) e.work->reject(shutting_down_);
  for (auto& th : threads_) th.join();
  workers_gauge_.Set(0);
}

void bounded_pool_policy::resize_locked(int workers) {
  target_workers_ = workers;
  while (live_workers_ < target_workers_) {
    ++live_workers_;
    threads_.emplace_back([this] { worker_loop(); });
  }
  // Surplus workers notice target_workers_ when they next wake, and exit: wake that many.
  if (live_workers_ > target_workers_) work_signal_.release(live_workers_ - target_workers_);
  workers_gauge_.Set(target_workers_);
  places_.set_fixed(target_workers_ + capacity_);
}

void bounded_pool_policy::configure_locked(const config& c) {
  capacity_ = c.bounded.queue_capacity;
  queue_timeout_ = std::chrono::milliseconds(c.bounded.queue_timeout_ms);
  cancel_on_disconnect_ = c.bounded.cancel_on_disconnect;
  retry_after_s_ = c.bounded.retry_after_s;
  codel_ = c.bounded.queue == "codel";
  codel_target_ = std::chrono::milliseconds(c.bounded.codel_target_ms);
  codel_interval_ = std::chrono::milliseconds(c.bounded.codel_interval_ms);
}

bool bounded_pool_policy::standing_locked(steady::time_point now) const {
  return codel_ && !queue_.empty() && now - last_empty_ >= codel_interval_;
}

steady::time_point bounded_pool_policy::expiry_locked(const entry& e) const {
  if (!codel_) return e.deadline;
  // Past its target once the queue has stood for an interval: the later of the two.
  return std::min(e.deadline,
                  std::max(e.work->admitted() + codel_target_, last_empty_ + codel_interval_));
}

void bounded_pool_policy::publish_depth_locked() {
  depth_gauge_.Set(static_cast<double>(queue_.size()));
}

void bounded_pool_policy::submit(std::shared_ptr<task> t) {
  const rejection* reject = nullptr;
  bool earliest_changed = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      reject = &shutting_down_;
    } else if (const rejection* why = t->admit(places_)) {
      // Every worker has a task and the queue is full, or the adaptive limit is reached.
      reject = why;
    } else {
      t->mark_queued();
      if (queue_.empty()) last_empty_ = steady::now();
      queue_.push_back({t, t->admitted() + queue_timeout_});
      // The supervisor is woken only for an expiry earlier than the one it sleeps until. With
      // one FIFO timeout that is rare: an idle supervisor sleeps one queue timeout at a time,
      // so it always wakes by the deadline of work admitted meanwhile (before, an entry into an
      // empty queue woke it: about every other request of a pool that keeps up).
      earliest_changed = expiry_locked(queue_.back()) < supervisor_wakes_at_;
      publish_depth_locked();
    }
  }
  if (reject != nullptr) {
    t->reject(*reject, reject == &shutting_down_ ? -1 : retry_after_s_.load());
    return;
  }
  work_signal_.release();
  if (earliest_changed) supervisor_cv_.notify_one();
}

void bounded_pool_policy::client_gone(const std::shared_ptr<task>& t) {
  bool was_queued = false;
  {
    std::lock_guard lock(mutex_);
    if (!cancel_on_disconnect_) return;
    auto it =
        std::find_if(queue_.begin(), queue_.end(), [&](const entry& e) { return e.work == t; });
    if (it != queue_.end()) {
      queue_.erase(it);
      publish_depth_locked();
      was_queued = true;
    }
  }
  if (was_queued) {
    t->cancel_queued();
  } else {
    t->cancel_running();
  }
}

void bounded_pool_policy::reconfigure(const config& c) {
  {
    std::lock_guard lock(mutex_);
    configure_locked(c);
    // Queued entries keep the deadline they were admitted with.
    if (!stopping_) resize_locked(c.bounded.workers);
    capacity_gauge_.Set(capacity_);
  }
  waits_.set_fanout_limit(c.bounded.fanout_limit);
  places_.configure(c.limiter);
  supervisor_cv_.notify_all();
}

void bounded_pool_policy::stop_all() {
  halt();
  std::deque<entry> left;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    left.swap(queue_);
    publish_depth_locked();
    for (auto& t : running_) t->request_stop();
  }
  for (auto& e : left) e.work->reject(shutting_down_);
}

bounded_pool_policy::work_signal::work_signal() {
  ::sem_init(&sem_, 0, 0);
}

bounded_pool_policy::work_signal::~work_signal() {
  ::sem_destroy(&sem_);
}

void bounded_pool_policy::work_signal::acquire() {
  while (::sem_wait(&sem_) != 0) {
    // EINTR: a signal handler ran; wait again
  }
}

void bounded_pool_policy::work_signal::release(int n) {
  for (int i = 0; i < n; ++i) ::sem_post(&sem_);
}

void bounded_pool_policy::worker_loop() {
  // SCHED_BATCH: same share of the CPU (weights are those of SCHED_OTHER), but a worker that
  // is woken does not preempt the thread running where it lands: the I/O thread that woke it
  // goes on reading and answering instead of being switched out. Where the policy cannot be
  // set, nothing changes.
  sched_param batch{};
  ::sched_setscheduler(0, SCHED_BATCH, &batch);
  for (;;) {
    // One signal per admitted task (and per worker asked to exit). A semaphore rather than a
    // condition variable: a busy pool takes a signal without a system call, and a submit wakes
    // at most one sleeping worker (and none when no worker sleeps).
    work_signal_.acquire();
    std::unique_lock lock(mutex_);
    if (exiting_ || live_workers_ > target_workers_) {
      --live_workers_;
      return;  // the thread object is joined by the destructor
    }
    if (queue_.empty()) continue;  // its task was cancelled or timed out meanwhile
    // A standing queue under codel serves the newest first: its client is the likeliest to
    // still be waiting.
    entry e;
    if (standing_locked(steady::now())) {
      e = std::move(queue_.back());
      queue_.pop_back();
    } else {
      e = std::move(queue_.front());
      queue_.pop_front();
    }
    if (queue_.empty()) last_empty_ = steady::now();
    publish_depth_locked();
    running_.push_back(e.work);
    lock.unlock();

    queue_wait_.Observe(std::chrono::duration<double>(steady::now() - e.work->admitted()).count());
    if (steady::now() >= e.deadline) {
      e.work->reject(timed_out_, retry_after_s_.load());
    } else {
      e.work->run({.wait = &waits_, .owner = this});
    }

    lock.lock();
    running_.erase(std::find(running_.begin(), running_.end(), e.work));
  }
}

void bounded_pool_policy::supervisor_loop() {
  std::unique_lock lock(mutex_);
  while (!exiting_) {
    // Answer work whose queue timeout (or codel target) has passed, oldest first: the queue
    // is in admission order, whichever end the workers take from.
    std::vector<std::shared_ptr<task>> expired;
    auto now = steady::now();
    while (!queue_.empty() && expiry_locked(queue_.front()) <= now) {
      expired.push_back(std::move(queue_.front().work));
      queue_.pop_front();
    }
    if (!expired.empty() && queue_.empty()) last_empty_ = now;
    if (!expired.empty()) {
      publish_depth_locked();
      lock.unlock();
      for (auto& t : expired) t->reject(timed_out_, retry_after_s_.load());
      lock.lock();
      continue;
    }
    // A copy: the entry may leave the queue while we wait (the lock is released). Idle, one
    // queue timeout (codel: or interval) from now: no later than the expiry of anything
    // admitted meanwhile.
    const auto idle = codel_ ? std::min(queue_timeout_, codel_interval_) : queue_timeout_;
    supervisor_wakes_at_ = queue_.empty() ? now + idle : expiry_locked(queue_.front());
    supervisor_cv_.wait_until(lock, supervisor_wakes_at_);
  }
}

}  // namespace stampede
