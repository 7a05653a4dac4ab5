#include "handlers/fanout.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace stampede {

int multiplexed_fetches(int count, int limit, std::chrono::milliseconds each,
                        const std::stop_token& stop) {
  using clock = std::chrono::steady_clock;
  std::vector<clock::time_point> in_flight;  // deadlines of fetches under way
  int started = 0, completed = 0;
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  while (completed < count) {
    auto now = clock::now();
    while (started < count && static_cast<int>(in_flight.size()) < limit) {
      in_flight.push_back(now + each);
      ++started;
    }
    auto next = *std::min_element(in_flight.begin(), in_flight.end());
    if (cv.wait_until(lock, stop, next, [] { return false; }); stop.stop_requested()) break;
    now = clock::now();
    auto done = std::partition(in_flight.begin(), in_flight.end(),
                               [&](clock::time_point t) { return t > now; });
    completed += static_cast<int>(in_flight.end() - done);
    in_flight.erase(done, in_flight.end());
  }
  return completed;
}

int thread_per_fetch(int count, std::chrono::milliseconds each, const std::stop_token& stop) {
  std::atomic<int> completed = 0;
  std::vector<std::jthread> threads;
  threads.reserve(count);
  int inline_runs = 0;
  for (int i = 0; i < count; ++i) {
    try {
      threads.emplace_back([&] {
        if (simulated_io(each, stop)) completed.fetch_add(1);
      });
    } catch (const std::system_error&) {
      ++inline_runs;  // the OS refused a thread: do this fetch ourselves after the others
    }
  }
  for (int i = 0; i < inline_runs; ++i) {
    if (simulated_io(each, stop)) completed.fetch_add(1);
  }
  threads.clear();  // joins
  return completed.load();
}

}  // namespace stampede
