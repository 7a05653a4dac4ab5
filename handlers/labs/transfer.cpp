#include "handlers/labs/transfer.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <numeric>

namespace stampede {

namespace {
char name_of(int account) {
  return static_cast<char>('a' + account);
}
}  // namespace

job<wait_end> transfer_lab::lock(request& r, int a, const work_context& ctx) {
  lab_wait granted(waits_);
  {
    std::lock_guard guard(mutex_);
    account& acc = accounts_[a];
    if (acc.owner == nullptr) {
      acc.owner = &r;
      r.holds[r.holds[0] < 0 ? 0 : 1] = a;
      co_return wait_end::fired;
    }
    acc.line.push_back(&r);
    r.waits_for = a;
    r.waiting_since = clock::now();
    r.wait = &granted;
  }
  // A lock wait, as a thread blocked in a mutex: the client leaving does not end it.
  wait_end got = co_await granted.wait(ctx, std::nullopt);
  std::lock_guard guard(mutex_);
  r.wait = nullptr;
  if (r.waits_for >= 0) {  // not granted (reset, victim, halt): leaves the line
    auto& line = accounts_[a].line;
    line.erase(std::find(line.begin(), line.end(), &r));
    r.waits_for = -1;
    co_return got == wait_end::fired ? wait_end::reset : got;
  }
  co_return wait_end::fired;  // unlock() made it the owner
}

void transfer_lab::unlock(request& r, int a) {
  account& acc = accounts_[a];
  for (int& h : r.holds) {
    if (h == a) h = -1;
  }
  acc.owner = nullptr;
  if (acc.line.empty()) return;
  request* next = acc.line.front();
  acc.line.pop_front();
  acc.owner = next;
  next->holds[next->holds[0] < 0 ? 0 : 1] = a;
  next->waits_for = -1;
  next->wait->end(wait_end::fired);
}

void transfer_lab::unlock_all(request& r) {
  std::lock_guard guard(mutex_);
  for (int h : r.holds) {
    if (h >= 0) unlock(r, h);
  }
}

job<response> transfer_lab::run(int v, int from, int to, int ms, const work_context& ctx) {
  request r{};
  r.variant = v;
  {
    std::lock_guard guard(mutex_);
    r.id = next_id_++;
  }
  // The one-line difference: unordered takes `from` first, whatever `to` is; ordered takes
  // the lower-named account first, so no two requests can each hold what the other waits for.
  const int first = v == unordered ? from : std::min(from, to);
  const int second = v == unordered ? to : std::max(from, to);
  wait_end got = co_await lock(r, first, ctx);
  if (got == wait_end::fired) {
    co_await ctx.sleep_for(std::chrono::milliseconds(ms));  // work under one lock
    got = co_await lock(r, second, ctx);
  }
  bool moved = false;
  if (got == wait_end::fired) {
    std::lock_guard guard(mutex_);
    accounts_[from].balance -= 1;
    accounts_[to].balance += 1;
    moved = true;
  }
  unlock_all(r);
  response res;
  std::string tail = ",\"mode\":\"" + std::string(ctx.mode) + "\",\"variant\":\"" +
                     std::string(names[v]) + "\",\"request\":" + std::to_string(r.id) + "}";
  if (moved) {
    res.body = std::string("{\"lab\":\"transfer\",\"from\":\"") + name_of(from) + "\",\"to\":\"" +
               name_of(to) + "\",\"moved\":1" + tail;
  } else if (got == wait_end::victim) {
    res = error_response(500, "chosen as the victim of a deadlock (labs.deadlock_break)",
                         "deadlock_victim", ctx.mode);
  } else {
    res = lab_stopped(got, ctx);
  }
  co_return res;
}

std::vector<std::string> transfer_lab::watch(std::chrono::milliseconds detect, bool break_it) {
  std::vector<std::string> lines;
  std::lock_guard guard(mutex_);
  // Each waiting request has one edge: to the owner of the lock it waits for. A cycle of
  // such edges is a deadlock: nobody in it can ever go on.
  std::map<request*, request*> edge;
  for (const auto& a : accounts_) {
    for (request* w : a.line) edge[w] = a.owner;
  }
  std::vector<std::vector<std::uint64_t>> standing;
  std::map<request*, int> seen;  // 1: on the current walk, 2: done
  auto now = clock::now();
  for (const auto& [start, _] : edge) {
    std::vector<request*> walk;
    request* at = start;
    while (at != nullptr && seen[at] == 0 && edge.count(at)) {
      seen[at] = 1;
      walk.push_back(at);
      at = edge[at];
    }
    if (at != nullptr && seen[at] == 1) {
      // `at` closes a cycle: the part of the walk from it on.
      std::vector<request*> cycle(std::find(walk.begin(), walk.end(), at), walk.end());
      std::vector<std::uint64_t> ids;
      clock::time_point formed = clock::time_point::min();
      for (request* m : cycle) {
        ids.push_back(m->id);
        formed = std::max(formed, m->waiting_since);  // the last edge made it a cycle
      }
      std::sort(ids.begin(), ids.end());
      standing.push_back(ids);
      bool reported = std::find(reported_.begin(), reported_.end(), ids) != reported_.end();
      auto lasted = std::chrono::duration_cast<std::chrono::milliseconds>(now - formed);
      if (!reported && lasted >= detect) {
        std::string line = "deadlock: " + std::to_string(cycle.size()) + " requests in a cycle";
        boost::json::array members;
        for (request* m : cycle) {
          int held = m->holds[0] >= 0 ? m->holds[0] : m->holds[1];
          line += std::string("; request ") + std::to_string(m->id) + " (" +
                  std::string(names[m->variant]) + ") holds " + name_of(held) + ", waits for " +
                  name_of(m->waits_for);
          members.push_back(
              boost::json::object{{"request", m->id},
                                  {"holds", std::string(1, name_of(held))},
                                  {"waits_for", std::string(1, name_of(m->waits_for))}});
        }
        line += "; the cycle has lasted " + std::to_string(lasted.count()) + " ms";
        request* victim = nullptr;
        if (break_it) {
          // The youngest request gives way, as a database picks the one with least work done.
          victim = *std::max_element(cycle.begin(), cycle.end(),
                                     [](request* x, request* y) { return x->id < y->id; });
          line += "; request " + std::to_string(victim->id) + " fails as the victim";
        }
        deadlocks_[cycle.front()->variant].fetch_add(1);
        reported_.push_back(ids);
        boost::json::object d{{"requests", members},
                              {"lasted_ms", lasted.count()},
                              {"victim", victim ? boost::json::value(victim->id) : nullptr}};
        last_detection_ = boost::json::serialize(d);
        lines.push_back(std::move(line));
        if (victim != nullptr) victim->wait->end(wait_end::victim);
      }
    }
    for (request* w : walk) seen[w] = 2;
  }
  // Cycles that no longer stand are forgotten: the same requests cannot form one again.
  std::erase_if(reported_, [&](const auto& ids) {
    return std::find(standing.begin(), standing.end(), ids) == standing.end();
  });
  return lines;
}

std::string transfer_lab::to_json() const {
  std::lock_guard guard(mutex_);
  boost::json::array accs;
  std::int64_t total = 0;
  for (int i = 0; i < accounts; ++i) {
    const account& a = accounts_[i];
    boost::json::array line;
    for (request* w : a.line) line.push_back(w->id);
    accs.push_back(
        boost::json::object{{"account", std::string(1, name_of(i))},
                            {"balance", a.balance},
                            {"held_by", a.owner ? boost::json::value(a.owner->id) : nullptr},
                            {"waiting", line}});
    total += a.balance;
  }
  boost::json::object o{{"accounts", accs},
                        {"total_balance", total},
                        {"deadlocks", boost::json::object{{"unordered", deadlocks_[0].load()},
                                                          {"ordered", deadlocks_[1].load()}}}};
  if (!last_detection_.empty()) {
    o["last_detection"] = boost::json::parse(last_detection_);
  } else {
    o["last_detection"] = nullptr;
  }
  return boost::json::serialize(o);
}

void transfer_lab::reset() {
  std::lock_guard guard(mutex_);
  for (auto& a : accounts_) a.balance = opening_balance;
  for (auto& d : deadlocks_) d.store(0);
  last_detection_.clear();
  reported_.clear();
}

}  // namespace stampede
