#include "handlers/fanout.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "handlers/downstream.hpp"

namespace stampede {

namespace {
std::chrono::steady_clock::time_point or_none(std::chrono::steady_clock::time_point deadline) {
  return deadline == std::chrono::steady_clock::time_point{}
             ? std::chrono::steady_clock::time_point::max()
             : deadline;
}
}  // namespace

int multiplexed_fetches(int count, int limit, std::chrono::milliseconds each, downstream* ds,
                        std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                        call_outcome* failure) {
  if (ds != nullptr && ds->remote != nullptr) {
    return call_many(*ds->remote, count, limit, static_cast<int>(each.count()), or_none(deadline),
                     stop, failure);
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

int thread_per_fetch(int count, std::chrono::milliseconds each, downstream* ds,
                     std::chrono::steady_clock::time_point deadline, const std::stop_token& stop,
                     call_outcome* failure) {
  std::atomic<int> completed = 0;
  std::atomic<call_outcome> first_failure = call_outcome::ok;
  auto fetch = [&] {
    call_outcome o = call_outcome::ok;
    if (ds != nullptr && ds->remote != nullptr) {
      o = call_blocking(*ds->remote, static_cast<int>(each.count()), or_none(deadline), stop);
    } else if (!(ds != nullptr ? ds->call(each, stop) : simulated_io(each, stop))) {
      o = call_outcome::cancelled;
    }
    if (o == call_outcome::ok) {
      completed.fetch_add(1);
    } else {
      auto none = call_outcome::ok;
      first_failure.compare_exchange_strong(none, o);
    }
  };
  std::vector<std::jthread> threads;
  threads.reserve(count);
  int inline_runs = 0;
  for (int i = 0; i < count; ++i) {
    try {
      threads.emplace_back(fetch);
    } catch (const std::system_error&) {
      ++inline_runs;  // the OS refused a thread: do this fetch ourselves after the others
    }
  }
  for (int i = 0; i < inline_runs; ++i) fetch();
  threads.clear();  // joins
  if (failure != nullptr && first_failure.load() != call_outcome::cancelled) {
    *failure = first_failure.load();
  }
  return completed.load();
}

}  // namespace stampede
