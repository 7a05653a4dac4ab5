#include "handlers/work.hpp"

#include <time.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <mutex>
#include <new>
#include <optional>

#include "handlers/downstream.hpp"

namespace stampede {

namespace {

std::atomic<std::int64_t> memory_held{0};
std::atomic<std::int64_t> memory_failures{0};

}  // namespace

working_set::working_set(int kb)
    : data_(nullptr), bytes_(static_cast<std::size_t>(kb < 0 ? 0 : kb) * 1024) {
  if (bytes_ == 0) return;
  data_ = new char[bytes_];  // may throw std::bad_alloc
  // Write every page through a volatile pointer, so the memory is really resident and the
  // stores cannot be optimised away.
  volatile char* p = data_;
  for (std::size_t i = 0; i < bytes_; i += 4096) p[i] = static_cast<char>(i >> 12);
  p[bytes_ - 1] = 1;
  memory_held.fetch_add(static_cast<std::int64_t>(bytes_), std::memory_order_relaxed);
}

working_set::~working_set() {
  if (data_ == nullptr) return;
  memory_held.fetch_sub(static_cast<std::int64_t>(bytes_), std::memory_order_relaxed);
  delete[] data_;
}

std::int64_t request_memory_bytes() {
  return memory_held.load(std::memory_order_relaxed);
}
std::int64_t request_memory_failures() {
  return memory_failures.load(std::memory_order_relaxed);
}

std::string_view to_string(handler_id h) {
  switch (h) {
    case handler_id::io:
      return "io";
    case handler_id::cpu:
      return "cpu";
    case handler_id::fanout:
      return "fanout";
    case handler_id::healthz:
      return "healthz";
    case handler_id::other:
      return "other";
  }
  return "other";
}

bool simulated_io(std::chrono::milliseconds d, const std::stop_token& stop) {
  if (d.count() <= 0) return !stop.stop_requested();
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  auto deadline = std::chrono::steady_clock::now() + d;
  // The predicate never holds, so the wait ends only at the deadline or when stop is
  // requested (wait_until then returns false either way); which of the two it was is read
  // from the token.
  bool stopped = cv.wait_until(lock, stop, deadline, [] { return false; }) || stop.stop_requested();
  return !stopped;
}

namespace {

std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

bool burn_cpu(std::chrono::milliseconds d, const std::stop_token& stop) {
  auto target = thread_cpu_time() + d;
  volatile std::uint64_t sink = 0;
  std::uint64_t x = 88172645463325252ull;
  while (true) {
    if (stop.stop_requested()) return false;
    // About 20 µs of arithmetic between checks of the clock and the stop token.
    for (int i = 0; i < 4000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    sink = sink + x;
    if (thread_cpu_time() >= target) return true;
  }
}

response error_response(int status, std::string_view message) {
  response r;
  r.status = status;
  boost::json::object body;
  body["error"] = message;
  body["status"] = status;
  r.body = boost::json::serialize(body);
  return r;
}

namespace {

/// One call to the dependency: through the downstream when there is one.
bool call_dependency(std::chrono::milliseconds d, const work_context& ctx) {
  if (ctx.dependency != nullptr) return ctx.dependency->call(d, ctx.stop);
  return simulated_io(d, ctx.stop);
}

}  // namespace

response run_handler(handler_id h, const work_params& p, const work_context& ctx) {
  auto start = std::chrono::steady_clock::now();
  bool finished = true;
  boost::json::object body;
  body["mode"] = ctx.mode;
  body["handler"] = to_string(h);
  // The request's working set, held until the handler returns (waiting included).
  std::optional<working_set> memory;
  if (h == handler_id::io || h == handler_id::cpu || h == handler_id::fanout) {
    try {
      memory.emplace(p.kb);
    } catch (const std::bad_alloc&) {
      memory_failures.fetch_add(1, std::memory_order_relaxed);
      response r = error_response(503, "out of memory for the request's working set");
      boost::json::object b;
      b["error"] = "out of memory";
      b["reason"] = "no_memory";
      b["mode"] = ctx.mode;
      b["kb"] = p.kb;
      r.body = boost::json::serialize(b);
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    body["kb"] = p.kb < 0 ? 0 : p.kb;
  }
  switch (h) {
    case handler_id::io:
      finished = call_dependency(std::chrono::milliseconds(p.ms), ctx);
      body["ms"] = p.ms;
      break;
    case handler_id::cpu:
      finished = burn_cpu(std::chrono::milliseconds(p.ms), ctx.stop);
      body["ms"] = p.ms;
      break;
    case handler_id::fanout: {
      int done = 0;
      if (p.parallel && ctx.fanout != nullptr) {
        done = ctx.fanout->run_parallel(p.n, std::chrono::milliseconds(p.ms), ctx.dependency,
                                        ctx.stop);
      } else {
        for (int i = 0; i < p.n && call_dependency(std::chrono::milliseconds(p.ms), ctx); ++i) {
          ++done;
        }
      }
      finished = done == p.n;
      body["n"] = p.n;
      body["ms"] = p.ms;
      body["parallel"] = p.parallel;
      body["fetched"] = done;
      break;
    }
    case handler_id::healthz:
      body["status"] = "ok";
      break;
    case handler_id::other:
      return error_response(404, "not found");
  }
  auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  body["elapsed_us"] = static_cast<std::int64_t>(elapsed.count() * 1000.0);
  body["outcome"] = finished ? "ok" : "cancelled";
  response r;
  r.status = finished ? 200 : 503;
  r.body = boost::json::serialize(body);
  return r;
}

}  // namespace stampede
