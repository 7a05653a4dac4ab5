#pragma once
// Tasks for policy tests: a body that blocks until released (or stopped), and a completion
// that can be awaited.

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

#include "server/execution_policy.hpp"

namespace stampede::testing {

/// A gate that bodies wait on until opened; stop tokens also release them.
struct gate {
  std::mutex m;
  std::condition_variable_any cv;
  bool open = false;
  void release() {
    {
      std::lock_guard l(m);
      open = true;
    }
    cv.notify_all();
  }
  /// Waits until released; false if stopped first.
  bool wait(const std::stop_token& stop) {
    std::unique_lock l(m);
    return cv.wait(l, stop, [&] { return open; });
  }
};

/// A task plus what happened to it.
struct probe {
  std::shared_ptr<task> t;
  std::atomic<bool> started{false};
  std::atomic<bool> saw_stop{false};
  std::promise<void> done;
  std::future<void> done_future = done.get_future();

  bool completed_within(std::chrono::milliseconds d) {
    return done_future.wait_for(d) == std::future_status::ready;
  }
};

inline std::shared_ptr<probe> make_probe(mode_kind mode, metrics& m, gate& g) {
  auto p = std::make_shared<probe>();
  std::weak_ptr<probe> weak = p;
  p->t = std::make_shared<task>(
      [weak, &g](const work_context& ctx) {
        auto self = weak.lock();
        self->started = true;
        if (!g.wait(ctx.stop)) self->saw_stop = true;
        return response{};
      },
      mode, m.for_mode(mode));
  p->t->on_done = [weak] {
    if (auto self = weak.lock()) self->done.set_value();
  };
  return p;
}

/// A thread that requests a stop on `s` after `after`, as a client that leaves would.
inline std::jthread stop_after(std::stop_source& s, std::chrono::milliseconds after) {
  return std::jthread([&s, after] {
    std::this_thread::sleep_for(after);
    s.request_stop();
  });
}

inline double value(prometheus::Counter* c) {
  return c->Value();
}

}  // namespace stampede::testing
