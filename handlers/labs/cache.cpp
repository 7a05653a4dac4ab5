#include "handlers/labs/cache.hpp"

#include <algorithm>
#include <ctime>
#include <memory>
#include <string>

namespace stampede {

namespace {
std::int64_t thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000 + t.tv_nsec / 1000;
}

/// A cleanup's CPU part: the evicted entry freed and the index rewritten.
constexpr std::chrono::milliseconds free_cpu{1};

std::int64_t free_entry(const std::stop_token& stop) {
  const auto before = thread_cpu_us();
  burn_cpu(free_cpu, stop);
  return thread_cpu_us() - before;
}
}  // namespace

void cache_lab::cleaned(int v, std::int64_t cpu_us, int queue_limit) {
  std::lock_guard guard(mutex_);
  cache& c = caches_[v];
  --c.cleanups;
  ++c.done;
  c.cpu_us += cpu_us;
  if (v != bounded) return;
  --c.in_batch;
  // The room this frees goes to the first put in line, whose cleanup it queues.
  while (!c.room_line.empty() && static_cast<int>(c.queue.size()) + c.in_batch < queue_limit) {
    put_waiting next = c.room_line.front();
    c.room_line.pop_front();
    if (next.wait->end(wait_end::fired)) {
      c.queue.push_back(next.ms);
      ++c.cleanups;
    }
  }
}

job<void> cache_lab::clean(int v, int ms, const work_context& ctx) {
  co_await ctx.sleep_for(std::chrono::milliseconds(ms));  // the write-back
  cleaned(v, free_entry(ctx.halt));
}

job<void> cache_lab::drain(int queue_limit, const work_context& ctx) {
  for (;;) {
    int batch = 0;
    int wait_ms = 0;
    {
      std::lock_guard guard(mutex_);
      cache& c = caches_[bounded];
      if (c.queue.empty()) {
        c.draining = false;
        co_return;
      }
      batch = static_cast<int>(c.queue.size());
      wait_ms = *std::max_element(c.queue.begin(), c.queue.end());
      c.queue.clear();
      c.in_batch = batch;
    }
    co_await ctx.sleep_for(std::chrono::milliseconds(wait_ms));  // one write-back for all
    for (int i = 0; i < batch; ++i) {
      cleaned(bounded, free_entry(ctx.halt), queue_limit);
      co_await ctx.yield();  // a coroutine thread's requests go between the frees
    }
  }
}

void cache_lab::start_drainer(const work_context& ctx, int queue_limit) {
  spawn_child(
      ctx, [this, queue_limit](const work_context& c) { return drain(queue_limit, c); }, {},
      [this] {
        // The mode refused the drainer: what it would have cleaned is counted, not left
        // queued for a drainer that is not coming, and the puts waiting for room go on.
        std::lock_guard guard(mutex_);
        cache& c = caches_[bounded];
        c.draining = false;
        c.refused += static_cast<std::int64_t>(c.queue.size());
        c.cleanups -= static_cast<int>(c.queue.size());
        c.queue.clear();
        for (const put_waiting& w : c.room_line) {
          if (w.wait->end(wait_end::fired)) ++c.refused;
        }
        c.room_line.clear();
      });
}

job<response> cache_lab::run(int v, int ms, limits lim, const work_context& ctx) {
  bool evicted = false;
  bool spawn_cleanup = false;
  bool start = false;
  std::unique_ptr<lab_wait> room;
  {
    std::lock_guard guard(mutex_);
    cache& c = caches_[v];
    if (v == unbounded && c.cleanups >= lim.max_cleanups) {
      auto r = error_response(503, "too many cleanups under way (labs.max_cleanups)",
                              "cleanup_ceiling", ctx.mode);
      r.headers.emplace_back("Retry-After", "1");
      co_return r;
    }
    c.keys.push_back(c.next_key++);
    if (static_cast<int>(c.keys.size()) > lim.entries) {
      c.keys.pop_front();
      evicted = true;
      if (v == unbounded) {
        ++c.cleanups;
        spawn_cleanup = true;
      } else if (static_cast<int>(c.queue.size()) + c.in_batch < lim.queue) {
        c.queue.push_back(ms);
        ++c.cleanups;
        start = !c.draining;
        c.draining = true;
      } else {
        room = std::make_unique<lab_wait>(waits_);
        c.room_line.push_back({room.get(), ms});
      }
    }
  }
  // Outside the lock: a mode may run child work inline, or refuse it at once.
  if (start) start_drainer(ctx, lim.queue);
  if (spawn_cleanup) {
    // Fire and forget: nobody waits for it, and nothing bounds how many run.
    spawn_child(
        ctx, [this, ms](const work_context& c) { return clean(unbounded, ms, c); }, {},
        [this] {
          std::lock_guard guard(mutex_);
          --caches_[unbounded].cleanups;
          ++caches_[unbounded].refused;
        });
  }
  if (room) {
    // The queue is full: this put waits, without a thread or CPU, until the drainer frees
    // a place and queues its cleanup; a client leaving does not end it.
    wait_end got = co_await room->wait(ctx, std::nullopt);
    if (got != wait_end::fired) {
      std::lock_guard guard(mutex_);
      auto& line = caches_[bounded].room_line;
      auto at = std::find_if(line.begin(), line.end(),
                             [&](const put_waiting& w) { return w.wait == room.get(); });
      if (at != line.end()) line.erase(at);
      co_return lab_stopped(got, ctx);
    }
  }
  response r;
  r.body = "{\"lab\":\"cache\",\"variant\":\"" + std::string(names[v]) + "\",\"mode\":\"" +
           std::string(ctx.mode) + "\",\"evicted\":" + (evicted ? "true" : "false") + "}";
  co_return r;
}

cache_lab::figures cache_lab::read(int v) const {
  std::lock_guard guard(mutex_);
  const cache& c = caches_[v];
  return figures{static_cast<int>(c.keys.size()),
                 c.cleanups,
                 c.done,
                 c.refused,
                 static_cast<double>(c.cpu_us) / 1e6,
                 static_cast<int>(c.room_line.size())};
}

void cache_lab::reset() {
  std::lock_guard guard(mutex_);
  for (auto& c : caches_) {
    c.keys.clear();
    c.done = 0;
    c.refused = 0;
    c.cpu_us = 0;
  }
}

}  // namespace stampede
