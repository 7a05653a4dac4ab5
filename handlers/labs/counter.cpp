#include "handlers/labs/counter.hpp"

#include <string>

#include "handlers/labs/lab_wait.hpp"

namespace stampede {

// The three increments differ only in how the read-modify-write is made; each has one
// interleaving point, which racy puts between its read and its write.

job<void> counter_lab::increment_racy(const work_context& ctx) {
  std::int64_t seen = racy_value_;
  co_await interleave(ctx);  // another request reads the same value here
  racy_value_ = seen + 1;    // and one of the two writes is lost
}

job<void> counter_lab::increment_mutex(const work_context& ctx) {
  {
    std::lock_guard lock(mutex_);
    mutex_value_ = mutex_value_ + 1;
  }
  co_await interleave(ctx);
}

job<void> counter_lab::increment_atomic(const work_context& ctx) {
  atomic_value_.fetch_add(1);
  co_await interleave(ctx);
}

job<response> counter_lab::run(int v, int k, const work_context& ctx) {
  int made = 0;
  while (made < k && !ctx.stop.stop_requested()) {
    expected_[v].fetch_add(1);
    if (v == racy) {
      co_await increment_racy(ctx);
    } else if (v == mutex) {
      co_await increment_mutex(ctx);
    } else {
      co_await increment_atomic(ctx);
    }
    ++made;
  }
  response r;
  r.status = made == k ? 200 : 503;
  r.body = std::string("{\"lab\":\"counter\",\"variant\":\"") + std::string(names[v]) +
           "\",\"mode\":\"" + std::string(ctx.mode) + "\",\"increments\":" + std::to_string(made) +
           ",\"outcome\":\"" + (made == k ? "ok" : "cancelled") + "\"}";
  co_return r;
}

counter_lab::figures counter_lab::read(int v) {
  figures f;
  f.expected = expected_[v].load();
  if (v == racy) {
    // The scrape reads the racy counter under no lock either: a torn or stale read is part
    // of the lesson, and an atomic_ref keeps the read itself out of ThreadSanitizer's report.
    f.value = std::atomic_ref<std::int64_t>(racy_value_).load(std::memory_order_relaxed);
  } else if (v == mutex) {
    std::lock_guard lock(mutex_);
    f.value = mutex_value_;
  } else {
    f.value = atomic_value_.load();
  }
  return f;
}

void counter_lab::reset() {
  std::atomic_ref<std::int64_t>(racy_value_).store(0, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    mutex_value_ = 0;
  }
  atomic_value_.store(0);
  for (auto& e : expected_) e.store(0);
}

}  // namespace stampede
