#include "handlers/labs/leak.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace stampede {

/// What a request and its helper share: the channel between them. It lives as long as either
/// does (the helper's frame, or the child work not yet run, holds it): a helper is leaked from
/// the moment its request gave up until this is gone.
struct leak_lab::handoff {
  handoff(leak_lab& l, int v) : lab(l), arrived(l.waits_), variant(v) {}
  ~handoff() {
    if (!listed) return;
    std::lock_guard lock(lab.mutex_);
    lab.orphans_.erase(record);
    lab.leaked_[variant].fetch_sub(1);
  }
  leak_lab& lab;
  lab_wait arrived;  ///< the requester waits on it; the hand-over ends it
  const int variant;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::mutex mutex;       ///< guards what follows
  bool listening = true;  ///< false once the requester has given up
  bool delivered = false;
  bool listed = false;  ///< in lab.orphans_ (at `record`)
  std::list<helper_record>::iterator record;
};

job<void> leak_lab::helper(std::shared_ptr<handoff> h, int ms, int kb, const work_context& ctx) {
  // The request's working set: what the helper computes its result in, and hands over.
  working_set result(kb);
  co_await ctx.sleep_for(std::chrono::milliseconds(ms));
  bool nobody = false;
  {
    std::lock_guard lock(h->mutex);
    if (h->listening) {
      h->delivered = true;
      h->arrived.end(wait_end::fired);  // handed over: the requester takes it
    } else {
      nobody = true;
    }
  }
  if (nobody && h->variant == leaky) {
    // A send on an unbuffered channel whose receiver has gone: it never completes. Only a
    // reset or the server's halt ends it; until then the helper holds its worker, thread or
    // task, and the result it is trying to hand over.
    lab_wait never(waits_);
    co_await never.wait(ctx, std::nullopt);
  }
  // fixed: the result went into the channel's one free place, and nobody will read it; the
  // helper ends, and the channel with it once nobody holds it.
}

job<response> leak_lab::run(int v, int ms, int kb, std::chrono::milliseconds wait, int max_leaked,
                            const work_context& ctx) {
  response r;
  if (leaked_[leaky].load() + leaked_[fixed].load() >= max_leaked) {
    r = error_response(503, "too many leaked helpers (labs.max_leaked)", "leak_ceiling", ctx.mode);
    r.headers.emplace_back("Retry-After", "1");
    co_return r;
  }
  auto h = std::make_shared<handoff>(*this, v);
  if (ctx.children != nullptr) {
    ctx.children->spawn([this, h, ms, kb](const work_context& c) { return helper(h, ms, kb, c); });
  }
  wait_end got = co_await h->arrived.wait(ctx, wait);
  bool delivered = false;
  {
    std::lock_guard lock(h->mutex);
    delivered = h->delivered;
    if (!delivered) {
      h->listening = false;  // gives up: the helper, when it ends its work, finds nobody
      auto now = std::chrono::steady_clock::now();
      std::lock_guard listed(mutex_);
      h->record = orphans_.insert(orphans_.end(), helper_record{v, h->started, now});
      h->listed = true;
      leaked_[v].fetch_add(1);
    }
  }
  if (delivered) {
    r.body = "{\"lab\":\"leak\",\"variant\":\"" + std::string(names[v]) + "\",\"mode\":\"" +
             std::string(ctx.mode) + "\",\"result\":\"delivered\"}";
    co_return r;
  }
  if (got != wait_end::timed_out) co_return lab_stopped(got, ctx);
  co_return error_response(504, "the helper did not answer within labs.wait_ms", "helper_timeout",
                           ctx.mode);
}

std::string leak_lab::leaked_json() const {
  boost::json::array out;
  auto now = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::lock_guard lock(mutex_);
  for (const auto& rec : orphans_) {
    boost::json::object o;
    o["variant"] = std::string(names[rec.variant]);
    o["age_ms"] = ms(now - rec.started);
    o["orphaned_for_ms"] = ms(now - rec.orphaned);
    out.push_back(std::move(o));
  }
  return boost::json::serialize(out);
}

}  // namespace stampede
