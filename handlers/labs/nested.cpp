#include "handlers/labs/nested.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace stampede {

void nested_lab::child_starts() {
  std::lock_guard lock(mutex_);
  --children_pending_;
  stalled_since_ = clock::now();
  reported_ = false;
}

namespace {
job<void> child(int ms, const work_context& ctx) {
  co_await ctx.sleep_for(std::chrono::milliseconds(ms));
}
}  // namespace

job<response> nested_lab::run(int v, int k, int ms, const work_context& ctx) {
  response r;
  const auto begin = clock::now();
  int ran = k;
  if (v == inline_children) {
    // The fix: the K children run on this request's own worker, their waits multiplexed as
    // /work/fanout's are, so they end together after N ms and need nobody else's thread.
    co_await ctx.sleep_for(std::chrono::milliseconds(ms));
  } else {
    child_group children(waits_, k);
    {
      std::lock_guard lock(mutex_);
      if (children_pending_ == 0) {
        stalled_since_ = clock::now();
        reported_ = false;
      }
      children_pending_ += k;
      ++parents_waiting_;
    }
    for (int i = 0; i < k; ++i) {
      children.spawn(
          ctx, [ms](const work_context& c) { return child(ms, c); }, [this] { child_starts(); },
          [this] {
            std::lock_guard lock(mutex_);
            --children_pending_;
          });
    }
    wait_end got = co_await children.wait(ctx);
    {
      std::lock_guard lock(mutex_);
      --parents_waiting_;
    }
    ran = children.ran();
    if (got != wait_end::fired) co_return lab_stopped(got, ctx);
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - begin);
  if (ran < k) {
    co_return error_response(503,
                             "the executor refused or dropped " + std::to_string(k - ran) + " of " +
                                 std::to_string(k) + " children",
                             "child_refused", ctx.mode);
  }
  r.body = "{\"lab\":\"nested\",\"variant\":\"" + std::string(names[v]) + "\",\"mode\":\"" +
           std::string(ctx.mode) + "\",\"children\":" + std::to_string(k) +
           ",\"elapsed_ms\":" + std::to_string(elapsed.count()) + "}";
  co_return r;
}

std::vector<std::string> nested_lab::watch(std::chrono::milliseconds detect) {
  std::vector<std::string> lines;
  std::lock_guard lock(mutex_);
  if (parents_waiting_ == 0 || children_pending_ == 0 || reported_) return lines;
  auto stalled =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - stalled_since_);
  if (stalled < detect) return lines;
  reported_ = true;
  last_detected_after_ms_ = stalled.count();
  starved_.fetch_add(1);
  lines.push_back("pool starved: " + std::to_string(parents_waiting_) +
                  " parent request(s) hold their workers waiting for " +
                  std::to_string(children_pending_) +
                  " queued child(ren), and no child has started for " +
                  std::to_string(stalled.count()) + " ms");
  return lines;
}

std::string nested_lab::to_json() const {
  std::lock_guard lock(mutex_);
  boost::json::object o{
      {"parents_waiting", parents_waiting_},
      {"children_pending", children_pending_},
      {"starved", starved_.load()},
      {"last_detected_after_ms", last_detected_after_ms_ < 0
                                     ? boost::json::value(nullptr)
                                     : boost::json::value(last_detected_after_ms_)}};
  return boost::json::serialize(o);
}

void nested_lab::reset() {
  std::lock_guard lock(mutex_);
  starved_.store(0);
  last_detected_after_ms_ = -1;
  reported_ = false;
}

}  // namespace stampede
