#pragma once
/// \file `job<T>`: the coroutine type the workloads are written in. Knows nothing of Asio or
/// threads. A job is lazy: nothing runs until it is awaited by another job, run inline, or
/// started with a completion. Awaiting a job runs it from the awaiting one's await_suspend; a
/// job that ends without suspending hands back by returning, not by resuming its awaiter, so
/// a loop of awaits never grows the stack, whatever the compiler makes of tail calls (GCC's
/// sanitizer builds make none). One that suspended hands back when it ends, wherever it is.
///
/// Under the thread modes every wait a workload makes completes before it suspends (the
/// thread blocks inside `await_ready`), so a job runs to its end inside `run_inline()`. Under
/// the coroutine mode a wait suspends the job and the mode resumes it later on its threads.

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

namespace stampede {

/// Bytes held by the frames of jobs alive now, in every thread.
std::int64_t live_frame_bytes();

namespace detail {

/// Coroutine frames are allocated and freed at a high rate on the same few threads: a small
/// per-thread cache of freed frames by size class keeps that off the global allocator.
void* allocate_frame(std::size_t bytes);
void free_frame(void* p, std::size_t bytes) noexcept;

struct promise_base {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  /// Set first by whichever of the two comes second decides who continues the awaiter: the
  /// job ending, or the awaiter finding that the job it started has suspended.
  std::atomic<bool> settled{false};
  void (*on_finish)(void*) = nullptr;  ///< a started (top-level) job's completion
  void* finish_arg = nullptr;
  std::exception_ptr error;

  static void* operator new(std::size_t bytes) { return allocate_frame(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept { free_frame(p, bytes); }

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct final_awaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      promise_base& p = h.promise();
      if (p.on_finish != nullptr) {
        // May destroy the frame: nothing of it is touched afterwards.
        p.on_finish(p.finish_arg);
        return std::noop_coroutine();
      }
      // Ended within its awaiter's await_suspend: that call goes on and continues the awaiter.
      if (!p.settled.exchange(true)) return std::noop_coroutine();
      return p.continuation;
    }
    void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct promise_value : promise_base {
  std::optional<T> value;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct promise_value<void> : promise_base {
  void return_void() noexcept {}
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

/// \brief A lazily started coroutine producing a T. Owns its frame. Thread-safety: a job is
/// driven by one thread at a time; the mode that suspends it decides where it resumes.
template <class T>
class [[nodiscard]] job {
 public:
  struct promise_type : detail::promise_value<T> {
    job get_return_object() {
      return job(std::coroutine_handle<promise_type>::from_promise(*this));
    }
  };
  using handle = std::coroutine_handle<promise_type>;

  job() = default;
  job(job&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  job& operator=(job&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  job(const job&) = delete;
  job& operator=(const job&) = delete;
  ~job() { reset(); }

  explicit operator bool() const { return static_cast<bool>(h_); }
  bool done() const { return h_ && h_.done(); }

  /// Awaited by another job: runs this one, then continues the awaiting one with its result.
  auto operator co_await() && noexcept {
    struct awaiter {
      handle h;
      bool await_ready() noexcept { return false; }
      bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h.promise().continuation = awaiting;
        h.resume();
        // false: it has ended already, and the awaiter goes on here, on this stack frame.
        return !h.promise().settled.exchange(true);
      }
      T await_resume() { return h.promise().take(); }
    };
    return awaiter{h_};
  }

  /// Runs the job on the calling thread to its end and returns its result. Every wait it makes
  /// must complete without suspending (its work_context's waits block); a job that suspends
  /// anyway is a logic error and throws.
  T run_inline() {
    h_.resume();
    if (!h_.done()) throw std::logic_error("job suspended while run inline");
    return h_.promise().take();
  }

  /// Starts the job; `done(arg)` is called on whatever thread finishes it, after which the
  /// result can be taken. `done` may destroy this job.
  void start(void (*done)(void*), void* arg) {
    h_.promise().on_finish = done;
    h_.promise().finish_arg = arg;
    h_.resume();
  }
  /// The result of a finished job (rethrows what it threw).
  T take() { return h_.promise().take(); }

 private:
  explicit job(handle h) : h_(h) {}
  void reset() {
    if (h_) h_.destroy();
    h_ = {};
  }
  handle h_;
};

}  // namespace stampede
