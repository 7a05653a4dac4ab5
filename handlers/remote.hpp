#pragma once
/// \file The dependency as a real service over the network (downstream.url): what a call to
/// it can come to, the interface the server's HTTP client implements, and how a handler waits
/// for a call. Knows nothing of Asio.

#include <chrono>
#include <coroutine>
#include <functional>
#include <stop_token>
#include <string_view>

namespace stampede {

/// How one call to the remote dependency ended (each attempt, and the call as a whole).
enum class call_outcome {
  ok,          ///< a 2xx answer
  timeout,     ///< no answer within downstream.timeout_ms (waiting for a connection included)
  refused,     ///< the connection was refused: nobody listens there
  overloaded,  ///< the dependency answered 503: it turned the call away
  deadline_exceeded,  ///< the caller's deadline had passed (here, or the dependency said 504)
  lost,               ///< the connection closed or reset before the answer
  bad_answer,         ///< any other answer (a 4xx or 5xx status, or not HTTP)
  cancelled,          ///< the caller stopped waiting (its client left, or shutdown)
};
inline constexpr int call_outcome_count = 8;
std::string_view to_string(call_outcome o);

/// Whether another attempt may succeed where this one failed: the dependency was busy,
/// slow or away, not the request wrong or the caller gone.
inline bool retryable(call_outcome o) {
  return o == call_outcome::timeout || o == call_outcome::refused ||
         o == call_outcome::overloaded || o == call_outcome::lost;
}

/// \brief A remote dependency: `GET <url>?ms=N` over a pool of connections.
/// Thread-safety: call may be called from any thread at once.
class remote_dependency {
 public:
  using clock = std::chrono::steady_clock;
  /// One call, retried as downstream.retries and the retry budget allow. `deadline` is the
  /// caller's own (time_point::max(): none); no attempt outlives it or downstream.timeout_ms.
  /// `done` is called exactly once, on the client's thread, with how the call ended; a stop
  /// requested on `stop` ends it as cancelled. `done` must only hand the result on.
  virtual void call(int ms, clock::time_point deadline, const std::stop_token& stop,
                    std::function<void(call_outcome)> done) = 0;

 protected:
  ~remote_dependency() = default;
};

struct work_context;

/// `co_await remote_call{...}`: one call, made as the context's waits make it (blocking the
/// thread, or suspending the job).
struct remote_call {
  remote_dependency& remote;
  int ms;
  remote_dependency::clock::time_point deadline;
  const work_context& ctx;
  call_outcome outcome = call_outcome::cancelled;
  std::coroutine_handle<> h;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiting);
  call_outcome await_resume() const noexcept { return outcome; }
};

/// The caller's deadline as a remote call takes it: the clock's epoch (none) is "never".
inline remote_dependency::clock::time_point deadline_or_never(
    remote_dependency::clock::time_point deadline) {
  return deadline == remote_dependency::clock::time_point{}
             ? remote_dependency::clock::time_point::max()
             : deadline;
}

/// One call on the calling thread, waiting for its end (a thread mode's blocking call).
call_outcome call_blocking(remote_dependency& remote, int ms,
                           remote_dependency::clock::time_point deadline,
                           const std::stop_token& stop);

/// `count` calls with at most `limit` under way at once, started from the calling thread,
/// which waits for all of them (an event loop's way: no thread per call). Returns how many
/// succeeded; `*failure` is set to the first failed call's outcome, if any.
int call_many(remote_dependency& remote, int count, int limit, int ms,
              remote_dependency::clock::time_point deadline, const std::stop_token& stop,
              call_outcome* failure);

}  // namespace stampede
