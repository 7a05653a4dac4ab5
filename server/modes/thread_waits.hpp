#pragma once
/// \file How the thread modes' work waits: each wait blocks the thread that runs it, and a
/// fan-out waits on all its fetches together from that thread.

#include <atomic>

#include "handlers/work.hpp"

namespace stampede {

/// Runs up to `limit` fetches in flight at once on the calling thread, as an event loop
/// waits on many sockets: no extra threads. Each fetch holds a slot of `ds` (null: no
/// limit); the first waits for one in line, further ones start only while slots are free.
/// Takes at least ceil(count/limit)·each. Returns how many completed before `stop`. With a
/// remote dependency the calls are real and asynchronous (call_many), `limit` at once.
int multiplexed_fetches(int count, int limit, std::chrono::milliseconds each, downstream* ds,
                        std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                        call_outcome* failure);

/// \brief The waits of a mode that runs each request's work on a thread of its own, to its
/// end: every wait ends before the call returns. A fan-out has at most `fanout_limit`
/// fetches in flight (0: all of them), multiplexed on the caller.
/// Thread-safety: every member may be called from any thread.
class thread_waits : public waits {
 public:
  explicit thread_waits(int fanout_limit) : fanout_limit_(fanout_limit) {}
  virtual ~thread_waits() = default;
  thread_waits(const thread_waits&) = delete;
  thread_waits& operator=(const thread_waits&) = delete;

  bool sleep(std::chrono::milliseconds d, const std::stop_token& stop, std::coroutine_handle<> h,
             bool* finished) override;
  bool yield(std::coroutine_handle<> h) override;
  bool interleave(std::coroutine_handle<> h) override;
  bool acquire_slot(slot_awaiter& a) override;
  bool call_remote(remote_call& c) override;
  void resume(std::coroutine_handle<> h) override { h.resume(); }
  job<int> fan_out(int count, std::chrono::milliseconds each, const work_context& ctx,
                   std::chrono::steady_clock::time_point deadline, call_outcome* failure) override;

  void set_fanout_limit(int limit) { fanout_limit_.store(limit); }

 private:
  std::atomic<int> fanout_limit_;  ///< 0 = as many as asked
};

}  // namespace stampede
