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

child_group::child_group(wait_list& waits, int k) : state_(std::make_shared<state>(waits, k)) {
  if (k == 0) state_->all_gone.end(wait_end::fired);
}

namespace {
/// Travels with one child's work, and is destroyed with it, run or not.
struct child_ticket {
  child_ticket() = default;
  child_ticket(const child_ticket&) = delete;
  child_ticket& operator=(const child_ticket&) = delete;
  std::function<void()> never_started;
  std::function<void()> gone;
  bool started = false;
  ~child_ticket() {
    if (!started && never_started) never_started();
    if (gone) gone();
  }
};
}  // namespace

void spawn_child(const work_context& ctx, child_body body, std::function<void()> on_start,
                 std::function<void()> never_started, std::function<void()> gone) {
  auto ticket = std::make_shared<child_ticket>();
  ticket->never_started = std::move(never_started);
  ticket->gone = std::move(gone);
  if (ctx.children == nullptr) return;  // the ticket goes: never started
  ctx.children->spawn(
      [ticket, body = std::move(body), on_start = std::move(on_start)](const work_context& c) {
        ticket->started = true;
        if (on_start) on_start();
        return body(c);
      });
}

void child_group::spawn(const work_context& ctx, child_body body, std::function<void()> on_start,
                        std::function<void()> never_started) {
  auto s = state_;
  spawn_child(
      ctx, std::move(body),
      [s, on_start = std::move(on_start)] {
        s->ran.fetch_add(1);
        if (on_start) on_start();
      },
      std::move(never_started),
      [s] {
        if (s->left.fetch_sub(1) == 1) s->all_gone.end(wait_end::fired);
      });
}

job<wait_end> child_group::wait(const work_context& ctx) {
  co_return co_await state_->all_gone.wait(ctx, std::nullopt);
}

response lab_work_stopped(const work_context& ctx) {
  return error_response(503, "stopped", ctx.halt.stop_requested() ? "shutting_down" : "cancelled",
                        ctx.mode);
}

response lab_stopped(wait_end why, const work_context& ctx) {
  if (why == wait_end::halted)
    return error_response(503, "shutting down", "shutting_down", ctx.mode);
  return error_response(503, "stopped by a lab reset", "lab_reset", ctx.mode);
}

}  // namespace stampede
