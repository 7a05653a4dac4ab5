#include "server/modes/coroutine.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <thread>

namespace stampede {

namespace asio = boost::asio;

/// One thread and its event loop: the waits of the tasks given to it, each of which suspends
/// the task. Resumptions from other threads (a downstream slot freed, a stop requested, a
/// remote call answered) are posted to it.
class coroutine_policy::lane final : public waits {
 public:
  explicit lane(coroutine_policy& owner)
      : owner_(owner), guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~lane() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  asio::io_context& io() { return io_; }

  void resume(std::coroutine_handle<> h) override {
    asio::post(io_, [h] { h.resume(); });
  }

  bool yield(std::coroutine_handle<> h) override {
    // Behind every handler already ready on this thread: the other tasks get their turn.
    asio::post(io_, [h] { h.resume(); });
    return true;
  }
  bool interleave(std::coroutine_handle<> h) override { return yield(h); }

  bool sleep(std::chrono::milliseconds d, const std::stop_token& stop, std::coroutine_handle<> h,
             bool* finished) override {
    // Set up on this lane's thread (a task's first run is on the I/O thread that read its
    // request): the timer and its stop callback are then only touched here.
    asio::post(io_, [this, d, stop, h, finished] {
      auto s = std::make_shared<sleeper>(io_, d, h, finished);
      s->timer.async_wait([s](boost::system::error_code ec) {
        s->on_stop.reset();  // waits for a stop callback running on another thread
        *s->finished = !ec && !s->stopped.load();
        s->h.resume();
      });
      // A stop cancels the timer on this thread (the timer is not thread-safe); one requested
      // already runs the callback here, whose posted cancel follows the wait just started.
      s->on_stop.emplace(stop, stop_fn{s, this});
    });
    return true;
  }

  bool acquire_slot(slot_awaiter& a) override {
    // Registered before joining the line: a stop requested from here on finds the waiter in
    // line (or not yet in it, and then acquire_or_wait refuses).
    a.on_stop.emplace(a.ctx.stop, slot_awaiter::stop_fn{&a});
    switch (a.ctx.dependency->acquire_or_wait(a, a.ctx.stop)) {
      case downstream::wait_result::granted:
        a.ok = true;
        return false;
      case downstream::wait_result::stopped:
        a.ok = false;
        return false;
      case downstream::wait_result::waiting:
        break;
    }
    return true;  // granted() or the stop callback resumes it; nothing here is touched after
  }

  bool call_remote(remote_call& c) override {
    // The resumption is posted to this lane, so `c` is not touched after it.
    c.remote.call(c.ms, c.deadline, c.ctx.stop, [&c, this](call_outcome o) {
      c.outcome = o;
      resume(c.h);
    });
    return true;
  }

  job<int> fan_out(int count, std::chrono::milliseconds each, const work_context& ctx,
                   std::chrono::steady_clock::time_point deadline, call_outcome* failure) override;

 private:
  /// Runs `j` as a task of its own on this lane; the job is destroyed when it ends.
  void spawn(job<void> j) {
    auto* held = new job<void>(std::move(j));
    asio::post(io_,
               [held] { held->start([](void* p) { delete static_cast<job<void>*>(p); }, held); });
  }

  struct sleeper;
  struct stop_fn {
    std::weak_ptr<sleeper> s;
    lane* l;
    void operator()() const noexcept {
      if (auto held = s.lock()) held->stopped.store(true);
      // Only a post here: the timer is touched on the lane's thread, if still there.
      asio::post(l->io_, [w = s] {
        if (auto held = w.lock()) held->timer.cancel();
      });
    }
  };
  struct sleeper {
    sleeper(asio::io_context& io, std::chrono::milliseconds d, std::coroutine_handle<> handle,
            bool* f)
        : timer(io, d), h(handle), finished(f) {}
    asio::steady_timer timer;
    std::coroutine_handle<> h;
    bool* finished;
    std::atomic<bool> stopped{false};
    std::optional<std::stop_callback<stop_fn>> on_stop;
  };

  coroutine_policy& owner_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

namespace {

/// A parallel fan-out: `workers` child tasks take fetches from a shared count until none are
/// left, so at most `workers` run at once; the parent waits for all.
struct fan_out_state {
  const work_context& ctx;
  int count;
  std::chrono::milliseconds each;
  std::chrono::steady_clock::time_point deadline;
  std::atomic<call_outcome> failure{call_outcome::ok};  ///< the first remote call that failed
  std::atomic<int> next{0};
  std::atomic<int> completed{0};
  std::atomic<int> left{0};  ///< children still running, plus one for the parent
  std::coroutine_handle<> parent;
};

job<void> fetcher(fan_out_state& s) {
  for (int i = s.next.fetch_add(1); i < s.count; i = s.next.fetch_add(1)) {
    call_outcome o = co_await call_dependency(s.each, s.ctx, s.deadline);
    if (o != call_outcome::ok) {
      auto none = call_outcome::ok;
      s.failure.compare_exchange_strong(none, o);
      s.next.store(s.count);  // no more fetches after a failure
      break;
    }
    s.completed.fetch_add(1);
  }
  if (s.left.fetch_sub(1) == 1) s.ctx.wait->resume(s.parent);
}

struct join_awaiter {
  fan_out_state& s;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    s.parent = h;
    return s.left.fetch_sub(1) != 1;  // the last child has already finished: go on
  }
  void await_resume() const noexcept {}
};

}  // namespace

job<int> coroutine_policy::lane::fan_out(int count, std::chrono::milliseconds each,
                                         const work_context& ctx,
                                         std::chrono::steady_clock::time_point deadline,
                                         call_outcome* failure) {
  fan_out_state s{ctx, count, each, deadline, {}, {}, {}, {}, {}};
  int limit = owner_.fanout_limit_.load();
  int workers = limit > 0 ? std::min(limit, count) : count;
  s.left.store(workers + 1);
  for (int i = 0; i < workers; ++i) spawn(fetcher(s));
  co_await join_awaiter{s};
  *failure = s.failure.load();
  co_return s.completed.load();
}

coroutine_policy::coroutine_policy(const config& c, metrics& m)
    : execution_policy(mode_kind::coroutine),
      shutting_down_(m.for_mode(mode_kind::coroutine).rejection_for(common_reason::shutting_down)),
      max_tasks_(c.coroutine.max_tasks,
                 &m.for_mode(mode_kind::coroutine).rejection_for("task_limit"), c.limiter,
                 m.for_mode(mode_kind::coroutine)),
      cancel_on_disconnect_(c.coroutine.cancel_on_disconnect),
      fanout_limit_(c.coroutine.fanout_limit),
      retry_after_s_(c.coroutine.retry_after_s) {
  std::lock_guard lock(mutex_);
  resize_locked(c.coroutine.threads);
}

coroutine_policy::~coroutine_policy() {
  halt();
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    for (auto& t : running_) t->request_stop();
    idle_cv_.wait(lock, [&] { return running_.empty(); });
  }
  lanes_.clear();  // stops and joins the threads
}

void coroutine_policy::resize_locked(int threads) {
  int n =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Lanes are added, never removed while the policy lives: a lane past the new count gets no
  // new tasks and idles once its tasks have ended.
  while (static_cast<int>(lanes_.size()) < n) lanes_.push_back(std::make_unique<lane>(*this));
  lanes_in_use_.store(n);
}

void coroutine_policy::submit(std::shared_ptr<task> t) {
  if (cancel_on_disconnect_.load() && t->client_already_gone(steady::now())) {
    // A task's first run is inline, before a disconnect watch could see anything.
    t->cancel_queued();
    return;
  }
  lane* target = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      target = nullptr;
    } else {
      if (const rejection* why = t->admit(max_tasks_)) {
        t->reject(*why, retry_after_s_.load());
        return;
      }
      live_.fetch_add(1);
      running_.insert(t);
      unsigned n = static_cast<unsigned>(lanes_in_use_.load());
      target = lanes_[next_lane_.fetch_add(1) % n].get();
    }
  }
  if (target == nullptr) {
    t->reject(shutting_down_);
    return;
  }
  // The task's first run is here, on the I/O thread that read its request, as a goroutine
  // starts on the processor that created it: a request that never waits (/healthz) costs no
  // hand-off. Its first wait or yield moves it to its lane. run() tells this policy when the
  // task ends (task_ended, before it completes), whether it ran or its client had already
  // left; it returns false only if something else ended it first.
  if (!t->run({.wait = target, .host = this, .owner = this})) task_ended(*t);
}

void coroutine_policy::task_ended(task& t) noexcept {
  std::lock_guard lock(mutex_);
  // Found by address: the set holds shared_ptrs.
  std::shared_ptr<task> key(std::shared_ptr<task>{}, &t);
  if (running_.erase(key) > 0) live_.fetch_sub(1);
  if (running_.empty()) idle_cv_.notify_all();
}

void coroutine_policy::client_gone(const std::shared_ptr<task>& t) {
  if (cancel_on_disconnect_.load()) t->cancel_running();
}

void coroutine_policy::reconfigure(const config& c) {
  max_tasks_.set_fixed(c.coroutine.max_tasks);
  max_tasks_.configure(c.limiter);
  cancel_on_disconnect_.store(c.coroutine.cancel_on_disconnect);
  fanout_limit_.store(c.coroutine.fanout_limit);
  retry_after_s_.store(c.coroutine.retry_after_s);
  std::lock_guard lock(mutex_);
  if (!stopping_) resize_locked(c.coroutine.threads);
}

void coroutine_policy::stop_all() {
  halt();
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (auto& t : running_) t->request_stop();
}

}  // namespace stampede
