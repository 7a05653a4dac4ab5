#include "handlers/labs/labs.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace stampede {

labs::labs(const lab_settings& s)
    : settings_(s),
      counter_(waits_),
      reserve_(s.stock),
      leak_(waits_),
      transfer_(waits_),
      nested_(waits_),
      lock_(waits_),
      cpu_fanout_(waits_),
      cache_(waits_) {}

void labs::configure(const lab_settings& s) {
  std::lock_guard lock(settings_mutex_);
  settings_ = s;
}

lab_settings labs::settings() const {
  std::lock_guard lock(settings_mutex_);
  return settings_;
}

job<response> labs::run(const work_params& p, const work_context& ctx) {
  switch (p.lab) {
    case lab_kind::counter:
      return counter_.run(p.variant, p.n, ctx);
    case lab_kind::reserve:
      return reserve_.run(p.variant, ctx);
    case lab_kind::leak: {
      auto s = settings();
      return leak_.run(p.variant, p.ms, p.kb, std::chrono::milliseconds(s.wait_ms), s.max_leaked,
                       ctx);
    }
    case lab_kind::transfer:
      return transfer_.run(p.variant, p.from, p.to, p.ms, ctx);
    case lab_kind::nested:
      return nested_.run(p.variant, p.n, p.ms, ctx);
    case lab_kind::lock:
      return lock_.run(p.variant, p.ms, ctx);
    case lab_kind::cpu_fanout:
      return cpu_fanout_.run(p.variant, p.n, p.ms, ctx);
    case lab_kind::cache:
      return cache_.run(p.variant, p.ms, settings().cache, ctx);
  }
  return counter_.run(p.variant, 0, ctx);
}

std::vector<std::string> labs::watch() {
  auto s = settings();
  const std::chrono::milliseconds detect(s.deadlock_detect_ms);
  auto lines = transfer_.watch(detect, s.deadlock_break);
  for (auto& l : nested_.watch(detect)) lines.push_back(std::move(l));
  return lines;
}

std::string labs::reset() {
  auto before = read();
  int leaked = before.leaked[0] + before.leaked[1];
  int freed = waits_.end_all(wait_end::reset);
  counter_.reset();
  reserve_.reset(settings().stock);
  transfer_.reset();
  nested_.reset();
  lock_.reset();
  cpu_fanout_.reset();
  cache_.reset();
  boost::json::object o{
      {"freed_waits", freed}, {"leaked_helpers", leaked}, {"stock", settings().stock}};
  return boost::json::serialize(o);
}

labs::figures labs::read() {
  figures f;
  for (int v = 0; v < counter_lab::variant_count; ++v) f.counter[v] = counter_.read(v);
  for (int v = 0; v < reserve_lab::variant_count; ++v) f.reserve[v] = reserve_.read(v);
  for (int v = 0; v < leak_lab::variant_count; ++v) f.leaked[v] = leak_.leaked(v);
  for (int v = 0; v < transfer_lab::variant_count; ++v) f.deadlocks[v] = transfer_.deadlocks(v);
  f.starved = nested_.starved();
  for (int v = 0; v < lock_lab::variant_count; ++v) f.lock[v] = lock_.read(v);
  for (int v = 0; v < cpu_fanout_lab::variant_count; ++v) f.cpu_fanout[v] = cpu_fanout_.read(v);
  for (int v = 0; v < cache_lab::variant_count; ++v) f.cache[v] = cache_.read(v);
  f.stuck = waits_.waiting();
  return f;
}

std::string labs::to_json() const {
  auto f = const_cast<labs*>(this)->read();
  auto s = settings();
  boost::json::object counter, reserve, leak;
  for (int v = 0; v < counter_lab::variant_count; ++v) {
    counter[counter_lab::names[v]] = boost::json::object{
        {"expected", f.counter[v].expected},
        {"value", f.counter[v].value},
        {"lost", std::max<std::int64_t>(0, f.counter[v].expected - f.counter[v].value)}};
  }
  for (int v = 0; v < reserve_lab::variant_count; ++v) {
    const auto& r = f.reserve[v];
    reserve[reserve_lab::names[v]] =
        boost::json::object{{"stock", r.stock},
                            {"sold", r.sold},
                            {"oversold", r.sold > r.initial ? r.sold - r.initial : 0}};
  }
  for (int v = 0; v < leak_lab::variant_count; ++v) leak[leak_lab::names[v]] = f.leaked[v];
  leak["helpers"] = boost::json::parse(leak_.leaked_json());
  boost::json::object lock, cpu_fanout, cache;
  for (int v = 0; v < lock_lab::variant_count; ++v) {
    const auto& l = f.lock[v];
    lock[lock_lab::names[v]] = boost::json::object{
        {"waiting", l.waiting},
        {"acquired", l.acquired},
        {"mean_wait_ms", l.acquired > 0 ? 1000 * l.wait_seconds / l.acquired : 0.0},
        {"updates", l.updates}};
  }
  for (int v = 0; v < cpu_fanout_lab::variant_count; ++v) {
    const auto& c = f.cpu_fanout[v];
    cpu_fanout[cpu_fanout_lab::names[v]] = boost::json::object{
        {"runs", c.runs}, {"speedup", c.wall_seconds > 0 ? c.work_seconds / c.wall_seconds : 0.0}};
  }
  for (int v = 0; v < cache_lab::variant_count; ++v) {
    const auto& c = f.cache[v];
    cache[cache_lab::names[v]] = boost::json::object{{"entries", c.entries},
                                                     {"cleanups_under_way", c.cleanups},
                                                     {"cleanups_done", c.done},
                                                     {"cleanups_refused", c.refused},
                                                     {"cleanup_cpu_seconds", c.cpu_seconds},
                                                     {"puts_waiting_for_room", c.waiting}};
  }
  boost::json::object o{
      {"settings", boost::json::object{{"stock", s.stock},
                                       {"wait_ms", s.wait_ms},
                                       {"max_leaked", s.max_leaked},
                                       {"deadlock_detect_ms", s.deadlock_detect_ms},
                                       {"deadlock_break", s.deadlock_break},
                                       {"cache_entries", s.cache.entries},
                                       {"cleanup_queue", s.cache.queue},
                                       {"max_cleanups", s.cache.max_cleanups}}},
      {"counter", counter},
      {"reserve", reserve},
      {"leak", leak},
      {"transfer", boost::json::parse(transfer_.to_json())},
      {"nested", boost::json::parse(nested_.to_json())},
      {"lock", lock},
      {"cpu_fanout", cpu_fanout},
      {"cache", cache},
      {"stuck_waits", f.stuck}};
  return boost::json::serialize(o);
}

}  // namespace stampede
