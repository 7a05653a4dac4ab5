#include "handlers/remote.hpp"

#include <condition_variable>
#include <mutex>

#include "handlers/work.hpp"

namespace stampede {

std::string_view to_string(call_outcome o) {
  switch (o) {
    case call_outcome::ok:
      return "ok";
    case call_outcome::timeout:
      return "timeout";
    case call_outcome::refused:
      return "refused";
    case call_outcome::overloaded:
      return "overloaded";
    case call_outcome::deadline_exceeded:
      return "deadline_exceeded";
    case call_outcome::lost:
      return "lost";
    case call_outcome::bad_answer:
      return "bad_answer";
    case call_outcome::cancelled:
      return "cancelled";
  }
  return "unknown";
}

call_outcome call_blocking(remote_dependency& remote, int ms,
                           remote_dependency::clock::time_point deadline,
                           const std::stop_token& stop) {
  std::mutex m;
  std::condition_variable cv;
  bool ended = false;
  call_outcome outcome = call_outcome::cancelled;
  remote.call(ms, deadline, stop, [&](call_outcome o) {
    // Notified under the lock: the waiter cannot return (and end m and cv) before this is done.
    std::lock_guard lock(m);
    outcome = o;
    ended = true;
    cv.notify_one();
  });
  // No stop token here: the client ends the call (as cancelled) when stop is requested, and
  // every call ends by its timeout at the latest.
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return ended; });
  return outcome;
}

int call_many(remote_dependency& remote, int count, int limit, int ms,
              remote_dependency::clock::time_point deadline, const std::stop_token& stop,
              call_outcome* failure) {
  struct state {
    std::mutex m;
    std::condition_variable cv;
    int started = 0, ended = 0, succeeded = 0;
    bool failed = false;
    call_outcome first_failure = call_outcome::ok;
  } s;
  const int width = limit > 0 ? std::min(limit, count) : count;
  // Each ending call starts the next (on the client's thread, which call() only posts to);
  // after a failure no more are started, as a sequential fan-out would stop.
  std::function<void()> start_next;
  start_next = [&] {
    remote.call(ms, deadline, stop, [&](call_outcome o) {
      bool more = false;
      {
        std::lock_guard lock(s.m);
        ++s.ended;
        if (o == call_outcome::ok) {
          ++s.succeeded;
        } else if (!s.failed) {
          s.failed = true;
          s.first_failure = o;
        }
        more = !s.failed && s.started < count;
        if (more) ++s.started;
        if (!more && s.ended == s.started) s.cv.notify_one();
      }
      if (more) start_next();
    });
  };
  {
    std::lock_guard lock(s.m);
    s.started = width;
  }
  for (int i = 0; i < width; ++i) start_next();
  std::unique_lock lock(s.m);
  s.cv.wait(lock, [&] { return s.ended == s.started && (s.failed || s.started == count); });
  if (s.failed && failure != nullptr) *failure = s.first_failure;
  return s.succeeded;
}

bool remote_call::await_suspend(std::coroutine_handle<> awaiting) {
  h = awaiting;
  return ctx.wait->call_remote(*this);
}

}  // namespace stampede
