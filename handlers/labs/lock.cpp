#include "handlers/labs/lock.hpp"

#include <algorithm>
#include <string>

namespace stampede {

job<wait_end> lock_lab::lock(int v, const work_context& ctx) {
  lab_wait granted(waits_);
  const auto since = clock::now();
  {
    std::lock_guard guard(mutex_);
    lock_state& l = locks_[v];
    if (!l.held) {
      l.held = true;
      ++l.acquired;
      co_return wait_end::fired;
    }
    l.line.push_back(&granted);
    ++l.waiting;
  }
  // As a thread blocked in a mutex: the client leaving does not end this wait.
  wait_end got = co_await granted.wait(ctx, std::nullopt);
  std::lock_guard guard(mutex_);
  lock_state& l = locks_[v];
  l.wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - since).count();
  if (got != wait_end::fired) {  // a reset or the halt: leaves the line, holding nothing
    --l.waiting;
    auto at = std::find(l.line.begin(), l.line.end(), &granted);
    if (at != l.line.end()) l.line.erase(at);
    co_return got;
  }
  co_return wait_end::fired;  // unlock() handed it over
}

void lock_lab::unlock(int v) {
  std::lock_guard guard(mutex_);
  lock_state& l = locks_[v];
  // Handed straight to the first in line, which is granted it even if a newcomer comes first.
  while (!l.line.empty()) {
    lab_wait* next = l.line.front();
    l.line.pop_front();
    if (next->end(wait_end::fired)) {
      --l.waiting;  // the holder now, though it has yet to wake
      ++l.acquired;
      return;
    }
  }
  l.held = false;
}

job<response> lock_lab::run(int v, int ms, const work_context& ctx) {
  const auto begin = clock::now();
  bool done = false;
  wait_end got = wait_end::fired;
  if (v == global) {
    got = co_await lock(v, ctx);
    if (got == wait_end::fired) {
      done = co_await ctx.sleep_for(std::chrono::milliseconds(ms));  // the work, under the lock
      if (done) updates_[v].fetch_add(1, std::memory_order_relaxed);
      unlock(v);
    }
  } else {
    done = co_await ctx.sleep_for(std::chrono::milliseconds(ms));  // the work, unlocked
    if (done) {
      got = co_await lock(v, ctx);  // held for the update only: nobody waits long
      if (got == wait_end::fired) {
        updates_[v].fetch_add(1, std::memory_order_relaxed);
        unlock(v);
      }
    }
  }
  if (got != wait_end::fired) co_return lab_stopped(got, ctx);
  if (!done) {
    co_return lab_work_stopped(ctx);
  }
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin).count();
  response r;
  r.body = "{\"lab\":\"lock\",\"variant\":\"" + std::string(names[v]) + "\",\"mode\":\"" +
           std::string(ctx.mode) + "\",\"work_ms\":" + std::to_string(ms) +
           ",\"elapsed_ms\":" + std::to_string(elapsed) + "}";
  co_return r;
}

lock_lab::figures lock_lab::read(int v) const {
  std::lock_guard guard(mutex_);
  const lock_state& l = locks_[v];
  return figures{l.waiting, l.acquired, static_cast<double>(l.wait_ns) / 1e9, updates_[v].load()};
}

void lock_lab::reset() {
  std::lock_guard guard(mutex_);
  for (auto& l : locks_) {
    l.acquired = 0;
    l.wait_ns = 0;
  }
  for (auto& u : updates_) u.store(0);
}

}  // namespace stampede
