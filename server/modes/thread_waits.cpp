#include "server/modes/thread_waits.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "handlers/work.hpp"

namespace stampede {

int multiplexed_fetches(int count, int limit, std::chrono::milliseconds each, downstream* ds,
                        std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                        call_outcome* failure) {
  if (ds != nullptr && ds->remote != nullptr) {
    return call_many(*ds->remote, count, limit, static_cast<int>(each.count()),
                     deadline_or_never(deadline), stop, failure);
  }
  using clock = std::chrono::steady_clock;
  std::vector<clock::time_point> in_flight;  // deadlines of fetches under way, each a slot
  int started = 0, completed = 0;
  auto release = [&](std::size_t n) {
    if (ds != nullptr) {
      for (std::size_t i = 0; i < n; ++i) ds->release();
    }
  };
  std::mutex m;
  std::condition_variable_any cv;
  while (completed < count) {
    while (started < count && static_cast<int>(in_flight.size()) < limit) {
      // With nothing under way, wait in line for a slot; otherwise take free ones only, and
      // finish what is under way first.
      bool got = ds == nullptr || (in_flight.empty() ? ds->acquire(stop) : ds->try_acquire());
      if (!got) break;
      in_flight.push_back(clock::now() + each);
      ++started;
    }
    if (in_flight.empty()) break;  // stopped while waiting for a slot
    auto next = *std::min_element(in_flight.begin(), in_flight.end());
    std::unique_lock lock(m);
    if (cv.wait_until(lock, stop, next, [] { return false; }); stop.stop_requested()) {
      release(in_flight.size());
      break;
    }
    auto now = clock::now();
    auto done = std::partition(in_flight.begin(), in_flight.end(),
                               [&](clock::time_point t) { return t > now; });
    auto finished = static_cast<std::size_t>(in_flight.end() - done);
    completed += static_cast<int>(finished);
    in_flight.erase(done, in_flight.end());
    release(finished);
  }
  return completed;
}

bool thread_waits::sleep(std::chrono::milliseconds d, const std::stop_token& stop,
                         std::coroutine_handle<>, bool* finished) {
  *finished = simulated_io(d, stop);
  return false;
}

bool thread_waits::yield(std::coroutine_handle<>) {
  return false;  // the thread is the work's own: nothing else waits for a turn on it
}

bool thread_waits::interleave(std::coroutine_handle<>) {
  std::this_thread::yield();
  return false;
}

bool thread_waits::acquire_slot(slot_awaiter& a) {
  a.ok = a.ctx.dependency->acquire(a.ctx.stop);
  return false;
}

bool thread_waits::call_remote(remote_call& c) {
  c.outcome = call_blocking(c.remote, c.ms, c.deadline, c.ctx.stop);
  return false;
}

job<int> thread_waits::fan_out(int count, std::chrono::milliseconds each, const work_context& ctx,
                               std::chrono::steady_clock::time_point deadline,
                               call_outcome* failure) {
  int limit = fanout_limit_.load();
  co_return multiplexed_fetches(count, limit > 0 ? limit : count, each, ctx.dependency, deadline,
                                ctx.stop, failure);
}

}  // namespace stampede
