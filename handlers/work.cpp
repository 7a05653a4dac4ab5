#include "handlers/work.hpp"

#include <time.h>

#include <atomic>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <mutex>
#include <new>
#include <optional>

#include "handlers/labs/labs.hpp"

namespace stampede {

/// One call waiting for a slot on its own thread. The granter sets `is_granted` and notifies
/// under the mutex, so the waiter cannot return (and destroy this) before that is done.
struct downstream::blocked_waiter final : downstream::waiter {
  std::condition_variable_any cv;
  bool is_granted = false;
  void granted() override {
    is_granted = true;
    cv.notify_one();
  }
};

void downstream::grant_locked() {
  while (!waiters_.empty() && has_room_locked()) {
    waiter* w = waiters_.front();
    waiters_.pop_front();
    w->in_line_ = false;
    ++in_use_;
    if (on_wait) {
      on_wait(std::chrono::duration<double>(std::chrono::steady_clock::now() - w->since_).count());
    }
    w->granted();
  }
}

bool downstream::try_acquire() {
  std::lock_guard lock(mutex_);
  if (!waiters_.empty() || !has_room_locked()) return false;
  ++in_use_;
  if (on_wait) on_wait(0);
  return true;
}

bool downstream::acquire(const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  if (stop.stop_requested()) return false;
  if (waiters_.empty() && has_room_locked()) {
    ++in_use_;
    lock.unlock();
    if (on_wait) on_wait(0);
    return true;
  }
  blocked_waiter w;
  w.since_ = std::chrono::steady_clock::now();
  w.place_ = waiters_.insert(waiters_.end(), &w);
  w.in_line_ = true;
  w.cv.wait(lock, stop, [&] { return w.is_granted; });
  if (!w.is_granted) {
    waiters_.erase(w.place_);  // stopped while waiting: leave the line, holding nothing
    return false;
  }
  return true;
}

downstream::wait_result downstream::acquire_or_wait(waiter& w, const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  // Checked under the lock: a stop requested later finds `w` in line (cancel_wait).
  if (stop.stop_requested()) return wait_result::stopped;
  if (waiters_.empty() && has_room_locked()) {
    ++in_use_;
    lock.unlock();
    if (on_wait) on_wait(0);
    return wait_result::granted;
  }
  w.since_ = std::chrono::steady_clock::now();
  w.place_ = waiters_.insert(waiters_.end(), &w);
  w.in_line_ = true;
  return wait_result::waiting;
}

bool downstream::cancel_wait(waiter& w) {
  std::lock_guard lock(mutex_);
  if (!w.in_line_) return false;
  waiters_.erase(w.place_);
  w.in_line_ = false;
  return true;
}

void downstream::release() {
  std::lock_guard lock(mutex_);
  --in_use_;
  grant_locked();
}

bool downstream::call(std::chrono::milliseconds hold, const std::stop_token& stop) {
  if (!acquire(stop)) return false;
  bool finished = simulated_io(hold, stop);
  release();
  return finished;
}

void downstream::set_capacity(int capacity) {
  std::lock_guard lock(mutex_);
  capacity_ = capacity;
  grant_locked();
}

downstream::snapshot downstream::stats() const {
  std::lock_guard lock(mutex_);
  return {capacity_, in_use_, static_cast<int>(waiters_.size())};
}

}  // namespace stampede

namespace stampede {

namespace {

std::atomic<std::int64_t> memory_held{0};
std::atomic<std::int64_t> memory_failures{0};
std::atomic<std::int64_t> skipped_for_deadline{0};

}  // namespace

working_set::working_set(int kb)
    : data_(nullptr), bytes_(static_cast<std::size_t>(kb < 0 ? 0 : kb) * 1024) {
  if (bytes_ == 0) return;
  data_ = new char[bytes_];  // may throw std::bad_alloc
  // Write every page through a volatile pointer, so the memory is really resident and the
  // stores cannot be optimised away.
  volatile char* p = data_;
  for (std::size_t i = 0; i < bytes_; i += 4096) p[i] = static_cast<char>(i >> 12);
  p[bytes_ - 1] = 1;
  memory_held.fetch_add(static_cast<std::int64_t>(bytes_), std::memory_order_relaxed);
}

working_set::~working_set() {
  if (data_ == nullptr) return;
  memory_held.fetch_sub(static_cast<std::int64_t>(bytes_), std::memory_order_relaxed);
  delete[] data_;
}

std::int64_t request_memory_bytes() {
  return memory_held.load(std::memory_order_relaxed);
}
std::int64_t request_memory_failures() {
  return memory_failures.load(std::memory_order_relaxed);
}
std::int64_t deadline_skips() {
  return skipped_for_deadline.load(std::memory_order_relaxed);
}

bool simulated_io(std::chrono::milliseconds d, const std::stop_token& stop) {
  if (d.count() <= 0) return !stop.stop_requested();
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  auto deadline = std::chrono::steady_clock::now() + d;
  // The predicate never holds, so the wait ends only at the deadline or when stop is
  // requested (wait_until then returns false either way); which of the two it was is read
  // from the token.
  bool stopped = cv.wait_until(lock, stop, deadline, [] { return false; }) || stop.stop_requested();
  return !stopped;
}

namespace {

std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

/// Spins until the calling thread has used `d` more CPU time, checking `stop` about every
/// 20 µs. Returns the CPU time used (less than `d` only if stopped).
std::chrono::nanoseconds spin(std::chrono::nanoseconds d, const std::stop_token& stop) {
  auto begin = thread_cpu_time();
  auto target = begin + d;
  volatile std::uint64_t sink = 0;
  std::uint64_t x = 88172645463325252ull;
  for (;;) {
    // About 20 µs of arithmetic between checks of the clock and the stop token.
    for (int i = 0; i < 4000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    sink = sink + x;
    auto now = thread_cpu_time();
    if (now >= target || stop.stop_requested()) return now - begin;
  }
}

/// A task yields at least this often while it burns CPU (as Go's scheduler preempts).
constexpr std::chrono::nanoseconds cpu_slice = std::chrono::milliseconds(1);

/// CPU work as a job: slices of at most cpu_slice, each followed by a yield. The CPU time is
/// summed per slice, as other tasks may run on the same thread in between.
job<bool> burn(std::chrono::milliseconds d, const work_context& ctx) {
  std::chrono::nanoseconds left = d;
  while (left.count() > 0) {
    if (ctx.stop.stop_requested()) co_return false;
    left -= spin(std::min(left, cpu_slice), ctx.stop);
    if (left.count() > 0) co_await ctx.yield();
  }
  co_return !ctx.stop.stop_requested();
}

}  // namespace

bool burn_cpu(std::chrono::milliseconds d, const std::stop_token& stop) {
  if (stop.stop_requested()) return false;
  spin(d, stop);
  return !stop.stop_requested();
}

bool sleep_awaiter::await_ready() {
  if (d.count() <= 0 || ctx.stop.stop_requested()) {
    finished = !ctx.stop.stop_requested();
    return true;
  }
  return false;
}

void slot_awaiter::granted() {
  ok = true;
  ctx.wait->resume(h);
}

void slot_awaiter::stop_fn::operator()() const noexcept {
  if (self->ctx.dependency->cancel_wait(*self)) {
    self->ok = false;
    self->ctx.wait->resume(self->h);
  }
}

job<call_outcome> call_dependency(std::chrono::milliseconds d, const work_context& ctx,
                                  std::chrono::steady_clock::time_point deadline) {
  if (ctx.dependency != nullptr && ctx.dependency->remote != nullptr) {
    co_return co_await remote_call{*ctx.dependency->remote,     static_cast<int>(d.count()),
                                   deadline_or_never(deadline), ctx,
                                   call_outcome::cancelled,     {}};
  }
  bool finished = false;
  if (ctx.dependency == nullptr) {
    finished = co_await ctx.sleep_for(d);
  } else if (co_await ctx.acquire_slot()) {
    finished = co_await ctx.sleep_for(d);
    ctx.dependency->release();
  }
  co_return finished ? call_outcome::ok : call_outcome::cancelled;
}

response downstream_failure(call_outcome o, std::string_view mode) {
  response r;
  switch (o) {
    case call_outcome::timeout:
      return error_response(504, "the downstream did not answer within downstream.timeout_ms",
                            "downstream_timeout", mode);
    case call_outcome::deadline_exceeded:
      return error_response(504, "the caller's deadline passed before the downstream answered",
                            "deadline_exceeded", mode);
    case call_outcome::refused:
      r = error_response(503, "the downstream refused the connection", "downstream_refused", mode);
      break;
    case call_outcome::overloaded:
      r = error_response(503, "the downstream is overloaded", "downstream_overloaded", mode);
      break;
    case call_outcome::lost:
      return error_response(502, "the downstream closed the connection without an answer",
                            "downstream_lost", mode);
    case call_outcome::bad_answer:
      return error_response(502, "the downstream gave an answer that is not a success",
                            "downstream_bad_answer", mode);
    case call_outcome::ok:
    case call_outcome::cancelled:
      return error_response(500, "not a failure", "internal", mode);
  }
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

namespace {

/// The handlers that do work (and hold a working set), as opposed to /healthz and 404.
bool does_work(handler_id h) {
  return h == handler_id::io || h == handler_id::cpu || h == handler_id::fanout;
}

/// The answer's JSON, built outside the coroutine (its frame, held while a request waits,
/// stays small) in a stack buffer: one allocation, the returned string, instead of one per key.
std::string answer_body(handler_id h, const work_params& p, std::string_view mode, int fetched,
                        std::int64_t elapsed_us) {
  unsigned char scratch[1024];
  boost::json::monotonic_resource arena(scratch, sizeof scratch);
  boost::json::object body(&arena);
  body.reserve(9);
  const bool works = does_work(h);
  body["mode"] = mode;
  body["handler"] = to_string(h);
  if (works) body["kb"] = p.kb < 0 ? 0 : p.kb;
  if (works) body["ms"] = p.ms;
  if (h == handler_id::fanout) {
    body["n"] = p.n;
    body["parallel"] = p.parallel;
    body["fetched"] = fetched;
  }
  if (h == handler_id::healthz) body["status"] = "ok";
  body["elapsed_us"] = elapsed_us;
  body["outcome"] = "ok";
  return boost::json::serialize(body);
}

}  // namespace

response run_handler(handler_id h, const work_params& p, const work_context& ctx) {
  return handle(h, p, ctx).run_inline();
}

namespace {

job<response> answer(response r) {
  co_return r;
}

/// The /work/* endpoints and /healthz. (The labs are jobs of their own: this frame, which
/// every waiting request holds, carries nothing of theirs.)
job<response> work(handler_id h, work_params p, const work_context& ctx) {
  if (h == handler_id::other) co_return error_response(404, "not found", "not_found", ctx.mode);
  auto start = std::chrono::steady_clock::now();
  const bool works = does_work(h);
  if (works && p.deadline != std::chrono::steady_clock::time_point{} && start >= p.deadline) {
    // Its caller has given up: the work would be done for nobody.
    skipped_for_deadline.fetch_add(1, std::memory_order_relaxed);
    co_return error_response(504, "the caller's deadline passed before the work started",
                             "deadline_exceeded", ctx.mode);
  }
  bool finished = true;
  int fetched = 0;
  call_outcome failure = call_outcome::ok;  // a remote call that failed
  // The request's working set, held until the handler returns (waiting included). The answer
  // is built after the work: a waiting request holds nothing else.
  std::optional<working_set> memory;
  if (works) {
    try {
      memory.emplace(p.kb);
    } catch (const std::bad_alloc&) {
      memory_failures.fetch_add(1, std::memory_order_relaxed);
      response r = error_response(
          503, "out of memory for the request's working set of " + std::to_string(p.kb) + " KiB",
          "no_memory", ctx.mode);
      r.headers.emplace_back("Retry-After", "1");
      co_return r;
    }
  }
  const std::chrono::milliseconds each(p.ms);
  switch (h) {
    case handler_id::io:
      failure = co_await call_dependency(each, ctx, p.deadline);
      finished = failure == call_outcome::ok;
      break;
    case handler_id::cpu:
      finished = co_await burn(each, ctx);
      break;
    case handler_id::fanout:
      if (p.parallel) {
        fetched = co_await ctx.wait->fan_out(p.n, each, ctx, p.deadline, &failure);
      } else {
        // (co_await kept out of the loop condition: GCC 12 mis-evaluates it there.)
        while (fetched < p.n) {
          failure = co_await call_dependency(each, ctx, p.deadline);
          if (failure != call_outcome::ok) break;
          ++fetched;
        }
      }
      finished = fetched == p.n;
      break;
    case handler_id::healthz:
    case handler_id::lab:
    case handler_id::other:
      break;
  }
  auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  if (!finished && failure != call_outcome::ok && failure != call_outcome::cancelled) {
    co_return downstream_failure(failure, ctx.mode);
  }
  if (!finished) {
    // Stopped: by the server's shutdown (the answer says so), or for a client that has left
    // (the answer is never written).
    const bool halted = ctx.halt.stop_requested();
    co_return error_response(503, "stopped before its work finished",
                             halted ? "shutting_down" : "cancelled", ctx.mode);
  }
  response r;
  r.body =
      answer_body(h, p, ctx.mode, fetched, static_cast<std::int64_t>(elapsed.count() * 1000.0));
  co_return r;
}

}  // namespace

job<response> handle(handler_id h, work_params p, const work_context& ctx, labs* lab) {
  if (h != handler_id::lab) return work(h, p, ctx);
  if (lab == nullptr)
    return answer(error_response(404, "no labs in this server", "not_found", ctx.mode));
  return lab->run(p, ctx);
}

}  // namespace stampede
