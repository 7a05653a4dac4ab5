#include "handlers/labs/counter.hpp"

#include <string>

#include "handlers/labs/lab_wait.hpp"

namespace stampede {

// The first three increments differ only in how the read-modify-write is made; each has one
// interleaving point, which racy puts between its read and its write. owner makes none: it
// sends the increment to the counter's owner and waits for it to be applied.

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
    if (v == owner) {
      wait_end got = co_await owner_.add(ctx);
      if (got != wait_end::fired) co_return lab_stopped(got, ctx);
    } else if (v == racy) {
      co_await increment_racy(ctx);
    } else if (v == mutex) {
      co_await increment_mutex(ctx);
    } else {
      co_await increment_atomic(ctx);
    }
    // Counted once made: a look between an increment's write and this count sees no update
    // lost, where counting first would show one in flight as lost.
    expected_[v].fetch_add(1);
    ++made;
  }
  if (made < k) {
    co_return error_response(
        503, "stopped after " + std::to_string(made) + " of " + std::to_string(k) + " increments",
        ctx.halt.stop_requested() ? "shutting_down" : "cancelled", ctx.mode);
  }
  response r;
  r.body = std::string("{\"lab\":\"counter\",\"variant\":\"") + std::string(names[v]) +
           "\",\"mode\":\"" + std::string(ctx.mode) + "\",\"increments\":" + std::to_string(made) +
           ",\"outcome\":\"ok\"}";
  co_return r;
}

counter_lab::figures counter_lab::read(int v) {
  figures f;
  // The count is read before the value: an increment finishing in between then shows the
  // value ahead of the count (no update lost), never behind it.
  f.expected = expected_[v].load();
  if (v == racy) {
    // The scrape reads the racy counter under no lock either, so a stale read is part of
    // the lesson. The atomic_ref keeps the read from tearing; against the requests' plain
    // writes it still races, and ThreadSanitizer may report that pair as well.
    f.value = std::atomic_ref<std::int64_t>(racy_value_).load(std::memory_order_relaxed);
  } else if (v == mutex) {
    std::lock_guard lock(mutex_);
    f.value = mutex_value_;
  } else if (v == atomic) {
    f.value = atomic_value_.load();
  } else {
    f.value = owner_.value();
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
  owner_.reset();
  for (auto& e : expected_) e.store(0);
}

}  // namespace stampede
