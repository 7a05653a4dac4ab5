#include "handlers/labs/cpu_fanout.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

namespace stampede {

namespace {
job<void> burn(int ms, const work_context& ctx) {
  // A coroutine task's first run is on the thread that spawned it; its first yield moves it
  // to a thread of its own mode's choosing. Without it, each child would run to its end on
  // the parent's thread before the next was spawned.
  co_await ctx.yield();
  burn_cpu(std::chrono::milliseconds(ms), ctx.stop);
}

double one_decimal(double x) {
  return std::round(x * 10) / 10;
}
}  // namespace

job<response> cpu_fanout_lab::run(int v, int k, int ms, const work_context& ctx) {
  using clock = std::chrono::steady_clock;
  const auto begin = clock::now();
  int ran = k;
  if (v == sequential) {
    for (int i = 0; i < k && !ctx.stop.stop_requested(); ++i) {
      burn_cpu(std::chrono::milliseconds(ms), ctx.stop);
    }
  } else if (v == concurrent) {
    // K children in turns of 1 ms on this one thread: all of them under way at once, and
    // not one instant of them in parallel.
    std::vector<int> left(static_cast<std::size_t>(k), ms);
    bool any = ms > 0;
    while (any && !ctx.stop.stop_requested()) {
      any = false;
      for (int& l : left) {
        if (l == 0) continue;
        burn_cpu(std::chrono::milliseconds(1), ctx.stop);
        any = --l > 0 || any;
      }
      co_await ctx.yield();  // the other tasks of a coroutine thread get their turn
    }
  } else {
    child_group children(waits_, k);
    for (int i = 0; i < k; ++i) {
      children.spawn(ctx, [ms](const work_context& c) { return burn(ms, c); });
    }
    wait_end got = co_await children.wait(ctx);
    if (got != wait_end::fired) co_return lab_stopped(got, ctx);
    ran = children.ran();
  }
  if (ctx.stop.stop_requested()) {
    co_return lab_work_stopped(ctx);
  }
  if (ran < k) {
    co_return error_response(503,
                             "the executor refused or dropped " + std::to_string(k - ran) + " of " +
                                 std::to_string(k) + " children",
                             "child_refused", ctx.mode);
  }
  const auto wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - begin).count();
  const std::int64_t work_us = static_cast<std::int64_t>(k) * ms * 1000;
  runs_[v].fetch_add(1);
  wall_us_[v].fetch_add(wall_us);
  work_us_[v].fetch_add(work_us);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const double wall_ms = wall_us / 1000.0;
  boost::json::object o{{"lab", "cpu_fanout"},
                        {"variant", names[v]},
                        {"mode", ctx.mode},
                        {"children", k},
                        {"child_ms", ms},
                        {"cores", cores},
                        {"wall_ms", one_decimal(wall_ms)},
                        {"work_ms", k * ms},
                        {"best_ms", one_decimal(k * ms / static_cast<double>(cores))},
                        {"speedup", one_decimal(wall_ms > 0 ? k * ms / wall_ms : 0)}};
  response r;
  r.body = boost::json::serialize(o);
  co_return r;
}

cpu_fanout_lab::figures cpu_fanout_lab::read(int v) const {
  return figures{runs_[v].load(), wall_us_[v].load() / 1e6, work_us_[v].load() / 1e6};
}

void cpu_fanout_lab::reset() {
  for (int v = 0; v < variant_count; ++v) {
    runs_[v].store(0);
    wall_us_[v].store(0);
    work_us_[v].store(0);
  }
}

}  // namespace stampede
