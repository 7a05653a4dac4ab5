#include "handlers/labs/lab_wait.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <thread>
#include <vector>

namespace stampede {

int wait_list::end_all(wait_end why) {
  std::lock_guard lock(mutex_);
  int ended = 0;
  for (lab_wait* w : waits_) ended += w->end(why) ? 1 : 0;
  return ended;
}

lab_wait::lab_wait(wait_list& all) : all_(all) {
  std::lock_guard lock(all_.mutex_);
  place_ = all_.waits_.insert(all_.waits_.end(), this);
}

lab_wait::~lab_wait() {
  std::lock_guard lock(all_.mutex_);
  all_.waits_.erase(place_);
}

bool lab_wait::end(wait_end why) {
  int expected = -1;
  if (!why_.compare_exchange_strong(expected, static_cast<int>(why))) return false;
  wake_.request_stop();  // wakes the sleep below (a condition variable, or a lane's timer)
  return true;
}

std::optional<wait_end> lab_wait::ended() const {
  int w = why_.load();
  if (w < 0) return std::nullopt;
  return static_cast<wait_end>(w);
}

job<wait_end> lab_wait::wait(const work_context& ctx,
                             std::optional<std::chrono::milliseconds> timeout) {
  // The halt reaches this wait through its own stop source; the client's stop token does not.
  std::stop_callback on_halt(ctx.halt, [this] { end(wait_end::halted); });
  struct counted {
    std::atomic<int>& n;
    explicit counted(std::atomic<int>& c) : n(c) { ++n; }
    ~counted() { --n; }
  } under_way(all_.waiting_);
  work_context sleeping = ctx;
  sleeping.stop = wake_.get_token();
  if (timeout) {
    bool whole = co_await sleeping.sleep_for(*timeout);
    if (whole) end(wait_end::timed_out);
  } else {
    // No limit: an hour at a time (a sleep, never a spin) until something ends it.
    while (!ended()) co_await sleeping.sleep_for(std::chrono::hours(1));
  }
  co_return *ended();
}

response lab_stopped(wait_end why, const work_context& ctx) {
  if (why == wait_end::halted)
    return error_response(503, "shutting down", "shutting_down", ctx.mode);
  return error_response(503, "stopped by a lab reset", "lab_reset", ctx.mode);
}

bool interleave_awaiter::await_ready() const {
  if (ctx.suspend != nullptr) return false;
  std::this_thread::yield();
  return true;
}

}  // namespace stampede
