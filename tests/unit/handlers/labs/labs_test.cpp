// The labs' mechanisms on their own, with jobs run inline on plain threads (the thread modes'
// way): the detectors, the waits only the lab can end, and the variants' contracts.

#include "handlers/labs/labs.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <future>
#include <thread>

#include "server/modes/thread_waits.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;

/// A thread mode's context: every wait blocks the calling thread.
struct thread_context {
  std::stop_source stop;
  std::stop_source halt;
  thread_waits waits{0};
  work_context ctx() {
    return work_context{stop.get_token(), &waits, "test", nullptr, halt.get_token()};
  }
};

/// Runs a lab job on a thread of its own; the answer arrives in the future.
std::future<response> run_on_thread(std::function<job<response>(const work_context&)> make,
                                    thread_context& tc) {
  return std::async(std::launch::async, [make, &tc] {
    work_context c = tc.ctx();
    return make(c).run_inline();
  });
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!f()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(LabWaitTest, a_client_stop_does_not_end_it_but_a_halt_does) {
  wait_list all;
  lab_wait w(all);
  thread_context tc;
  auto answer = std::async(std::launch::async, [&] {
    work_context c = tc.ctx();
    return w.wait(c, std::nullopt).run_inline();
  });
  ASSERT_TRUE(eventually([&] { return all.waiting() == 1; }));
  tc.stop.request_stop();  // the client left: a thread blocked in a mutex would not notice
  EXPECT_EQ(answer.wait_for(100ms), std::future_status::timeout);
  tc.halt.request_stop();
  ASSERT_EQ(answer.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(answer.get(), wait_end::halted);
}

TEST(LabWaitTest, end_all_frees_every_wait_and_a_timeout_ends_one) {
  wait_list all;
  lab_wait a(all), b(all);
  thread_context tc;
  auto wa = std::async(std::launch::async, [&] {
    work_context c = tc.ctx();
    return a.wait(c, std::nullopt).run_inline();
  });
  auto wb = std::async(std::launch::async, [&] {
    work_context c = tc.ctx();
    return b.wait(c, 20ms).run_inline();
  });
  EXPECT_EQ(wb.get(), wait_end::timed_out);
  ASSERT_TRUE(eventually([&] { return all.waiting() == 1; }));
  EXPECT_EQ(all.end_all(wait_end::reset), 1);  // b has ended already
  EXPECT_EQ(wa.get(), wait_end::reset);
}

TEST(TransferLabTest, the_wait_for_graph_finds_a_cycle_that_has_lasted_and_reports_it_once) {
  wait_list waits;
  transfer_lab lab(waits);
  thread_context tc;
  // a→b and b→a, each holding its first lock 50 ms: each then waits for the other's.
  auto one = run_on_thread([&](const work_context& c) { return lab.run(0, 0, 1, 50, c); }, tc);
  auto two = run_on_thread([&](const work_context& c) { return lab.run(0, 1, 0, 50, c); }, tc);
  ASSERT_TRUE(eventually([&] { return waits.waiting() == 2; }));
  EXPECT_TRUE(lab.watch(10s, false).empty());  // a cycle, but younger than 10 s
  std::this_thread::sleep_for(30ms);
  auto lines = lab.watch(20ms, false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("holds a, waits for b"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("holds b, waits for a"), std::string::npos) << lines[0];
  EXPECT_EQ(lab.deadlocks(0), 1);
  EXPECT_TRUE(lab.watch(20ms, false).empty());  // the same cycle is not reported again
  EXPECT_EQ(lab.deadlocks(0), 1);
  waits.end_all(wait_end::reset);  // the reset frees both (one may get the other's lock first)
  auto a = one.get(), b = two.get();
  EXPECT_GE((a.status == 503) + (b.status == 503), 1) << a.body << b.body;
  EXPECT_EQ((a.status == 503) + (b.status == 503) + (a.status == 200) + (b.status == 200), 2)
      << a.body << b.body;
  EXPECT_EQ(waits.waiting(), 0);
}

TEST(TransferLabTest, breaking_fails_the_youngest_as_the_victim_and_the_other_moves) {
  wait_list waits;
  transfer_lab lab(waits);
  thread_context tc;
  auto one = run_on_thread([&](const work_context& c) { return lab.run(0, 2, 3, 30, c); }, tc);
  ASSERT_TRUE(eventually([&] { return lab.to_json().find("\"held_by\":1") != std::string::npos; }));
  auto two = run_on_thread([&](const work_context& c) { return lab.run(0, 3, 2, 30, c); }, tc);
  ASSERT_TRUE(eventually([&] { return waits.waiting() == 2; }));
  std::this_thread::sleep_for(15ms);
  auto lines = lab.watch(10ms, true);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("request 2 fails as the victim"), std::string::npos) << lines[0];
  auto a = one.get(), b = two.get();
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(b.status, 500) << b.body;
  EXPECT_NE(b.body.find("deadlock_victim"), std::string::npos);
}

TEST(TransferLabTest, ordered_locks_never_form_a_cycle) {
  wait_list waits;
  transfer_lab lab(waits);
  thread_context tc;
  auto one = run_on_thread([&](const work_context& c) { return lab.run(1, 0, 1, 40, c); }, tc);
  auto two = run_on_thread([&](const work_context& c) { return lab.run(1, 1, 0, 40, c); }, tc);
  EXPECT_EQ(one.get().status, 200);
  EXPECT_EQ(two.get().status, 200);
  EXPECT_TRUE(lab.watch(0ms, false).empty());
  EXPECT_NE(lab.to_json().find("\"total_balance\":4000"), std::string::npos);
}

/// An executor that keeps every child it is given and runs none until told to: a pool whose
/// every worker is busy.
struct held_children final : child_spawner {
  std::mutex m;
  std::deque<child_fn> held;
  void spawn(child_fn make) override {
    std::lock_guard l(m);
    held.push_back(std::move(make));
  }
  void run_all(thread_context& tc) {
    std::deque<child_fn> now;
    {
      std::lock_guard l(m);
      now.swap(held);
    }
    while (!now.empty()) {
      child_fn make = std::move(now.front());
      now.pop_front();
      work_context c = tc.ctx();
      make(c).run_inline();
    }  // each child's work is let go as it ends, as an executor's task is
  }
};

/// A nested parent of `k` children given to `pool`, on a thread of its own.
std::future<response> start_parent(nested_lab& lab, held_children& pool, thread_context& tc,
                                   int k) {
  return std::async(std::launch::async, [&lab, &pool, &tc, k] {
    work_context c = tc.ctx();
    c.children = &pool;
    return lab.run(0, k, 1, c).run_inline();
  });
}

TEST(NestedLabTest, the_watchdog_fires_when_waiting_parents_see_no_child_start) {
  wait_list waits;
  nested_lab lab(waits);
  held_children pool;
  thread_context tc;
  auto parent = start_parent(lab, pool, tc, 3);
  ASSERT_TRUE(eventually([&] { return waits.waiting() == 1; }));
  EXPECT_TRUE(lab.watch(10s).empty());
  std::this_thread::sleep_for(20ms);
  auto lines = lab.watch(10ms);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("waiting for 3 queued"), std::string::npos) << lines[0];
  EXPECT_EQ(lab.starved(), 1);
  EXPECT_TRUE(lab.watch(10ms).empty());  // once per stall
  pool.run_all(tc);                      // a worker frees up: the children run
  auto r = parent.get();
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST(NestedLabTest, children_the_executor_drops_unrun_end_the_parent_with_503) {
  wait_list waits;
  nested_lab lab(waits);
  held_children pool;
  thread_context tc;
  auto parent = start_parent(lab, pool, tc, 2);
  ASSERT_TRUE(eventually([&] { return waits.waiting() == 1; }));
  {
    std::lock_guard l(pool.m);
    pool.held.clear();  // refused: dropped without being called
  }
  auto r = parent.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("child_refused"), std::string::npos) << r.body;
  EXPECT_TRUE(lab.watch(0ms).empty());
}

TEST(LeakLabTest, leaky_helpers_stay_after_their_request_and_fixed_ones_end) {
  wait_list waits;
  leak_lab lab(waits);
  held_children pool;
  thread_context tc;
  for (int v : {1, 0}) {  // fixed's helper is run first: leaky's never returns
    work_context c = tc.ctx();
    c.children = &pool;
    auto r = lab.run(v, 1, 0, 5ms, 10, c).run_inline();
    EXPECT_EQ(r.status, 504) << r.body;  // the helper has not even started
  }
  EXPECT_EQ(lab.leaked(0), 1);
  EXPECT_EQ(lab.leaked(1), 1);
  auto helpers = std::async(std::launch::async, [&] { pool.run_all(tc); });
  ASSERT_TRUE(eventually([&] { return lab.leaked(1) == 0; }));     // fixed: handed over, gone
  EXPECT_EQ(helpers.wait_for(50ms), std::future_status::timeout);  // leaky: blocked for good
  EXPECT_EQ(lab.leaked(0), 1);
  EXPECT_NE(lab.leaked_json().find("\"variant\":\"leaky\""), std::string::npos);
  waits.end_all(wait_end::reset);
  helpers.get();
  EXPECT_EQ(lab.leaked(0), 0);
}

TEST(LeakLabTest, past_the_ceiling_it_answers_503_at_once) {
  wait_list waits;
  leak_lab lab(waits);
  held_children pool;
  thread_context tc;
  work_context c = tc.ctx();
  c.children = &pool;
  EXPECT_EQ(lab.run(0, 1, 0, 1ms, 1, c).run_inline().status, 504);
  auto r = lab.run(0, 1, 0, 1ms, 1, c).run_inline();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("leak_ceiling"), std::string::npos);
  pool.held.clear();
  EXPECT_EQ(lab.leaked(0), 0);  // dropped unrun: nothing is alive any more
}

TEST(CounterLabTest, one_client_loses_nothing_even_racy) {
  wait_list waits;
  counter_lab lab(waits);
  thread_context tc;
  work_context c = tc.ctx();
  for (int v = 0; v < counter_lab::variant_count; ++v) {
    EXPECT_EQ(lab.run(v, 500, c).run_inline().status, 200);
    EXPECT_EQ(lab.read(v).expected, 500);
    EXPECT_EQ(lab.read(v).value, 500);
  }
}

TEST(CounterLabTest, mutex_atomic_and_owner_lose_nothing_under_concurrency) {
  wait_list waits;
  counter_lab lab(waits);
  thread_context tc;
  for (int v : {1, 2, 3}) {
    std::vector<std::future<response>> all;
    for (int i = 0; i < 4; ++i) {
      all.push_back(
          run_on_thread([&, v](const work_context& c) { return lab.run(v, 2000, c); }, tc));
    }
    for (auto& f : all) f.get();
    EXPECT_EQ(lab.read(v).value, 8000);
    EXPECT_EQ(lab.read(v).expected, 8000);
  }
}

TEST(ReserveLabTest, mutex_never_oversells) {
  reserve_lab lab(50);
  thread_context tc;
  std::vector<std::future<response>> all;
  for (int i = 0; i < 8; ++i) {
    all.push_back(run_on_thread(
        [&](const work_context& c) -> job<response> {
          for (int j = 0; j < 20; ++j) co_await lab.run(1, c);
          co_return response{};
        },
        tc));
  }
  for (auto& f : all) f.get();
  EXPECT_EQ(lab.read(1).sold, 50);
  EXPECT_EQ(lab.read(1).stock, 0);
}

}  // namespace
}  // namespace stampede

namespace stampede {
namespace {

TEST(CounterLabTest, the_owner_starts_again_from_zero_after_a_reset) {
  wait_list waits;
  counter_lab lab(waits);
  thread_context tc;
  work_context c = tc.ctx();
  EXPECT_EQ(lab.run(counter_lab::owner, 10, c).run_inline().status, 200);
  EXPECT_EQ(lab.read(counter_lab::owner).value, 10);
  lab.reset();
  EXPECT_TRUE(eventually([&] { return lab.read(counter_lab::owner).value == 0; }));
  EXPECT_EQ(lab.run(counter_lab::owner, 3, c).run_inline().status, 200);
  EXPECT_EQ(lab.read(counter_lab::owner).value, 3);
  EXPECT_EQ(lab.read(counter_lab::owner).expected, 3);
}

/// `n` lock lab requests of `ms` each, on threads of their own; how long they took together.
std::chrono::milliseconds run_lock_requests(lock_lab& lab, int v, int n, int ms) {
  thread_context tc;
  auto begin = std::chrono::steady_clock::now();
  std::vector<std::future<response>> all;
  for (int i = 0; i < n; ++i) {
    all.push_back(run_on_thread([&, v](const work_context& c) { return lab.run(v, ms, c); }, tc));
  }
  for (auto& f : all) EXPECT_EQ(f.get().status, 200);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               begin);
}

TEST(LockLabTest, global_does_one_request_at_a_time_and_narrow_does_them_together) {
  wait_list waits;
  lock_lab lab(waits);
  auto global = run_lock_requests(lab, lock_lab::global, 4, 50);
  EXPECT_GE(global, 200ms);  // four waits of 50 ms, one after another
  auto f = lab.read(lock_lab::global);
  EXPECT_EQ(f.acquired, 4);
  EXPECT_EQ(f.updates, 4);
  EXPECT_GT(f.wait_seconds, 0.1);  // 50 + 100 + 150 ms spent in line, give or take
  EXPECT_EQ(f.waiting, 0);
  auto narrow = run_lock_requests(lab, lock_lab::narrow, 4, 50);
  EXPECT_LT(narrow, 150ms);
  EXPECT_EQ(lab.read(lock_lab::narrow).updates, 4);
}

TEST(LockLabTest, a_reset_frees_the_line_but_not_the_holder) {
  wait_list waits;
  lock_lab lab(waits);
  thread_context tc;
  auto holder =
      run_on_thread([&](const work_context& c) { return lab.run(lock_lab::global, 300, c); }, tc);
  ASSERT_TRUE(eventually([&] { return lab.read(lock_lab::global).acquired == 1; }));
  auto waiter =
      run_on_thread([&](const work_context& c) { return lab.run(lock_lab::global, 1, c); }, tc);
  ASSERT_TRUE(eventually([&] { return lab.read(lock_lab::global).waiting == 1; }));
  waits.end_all(wait_end::reset);
  auto r = waiter.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("lab_reset"), std::string::npos) << r.body;
  EXPECT_EQ(holder.get().status, 200);
  run_lock_requests(lab, lock_lab::global, 1, 1);  // free again: taken at once, answers 200
}

/// A spawner that runs each child at once on a thread of its own: a mode with cores to spare.
struct thread_children final : child_spawner {
  thread_context& tc;
  std::mutex m;
  std::vector<std::thread> threads;
  explicit thread_children(thread_context& t) : tc(t) {}
  ~thread_children() {
    for (auto& t : threads) t.join();
  }
  void spawn(child_fn make) override {
    std::lock_guard l(m);
    threads.emplace_back([this, make = std::move(make)] {
      work_context c = tc.ctx();
      make(c).run_inline();
    });
  }
};

double field(const std::string& body, const std::string& key) {
  auto at = body.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + key.size() + 3));
}

TEST(CpuFanoutLabTest, concurrent_is_as_slow_as_sequential_and_parallel_gives_each_child_a_thread) {
  wait_list waits;
  cpu_fanout_lab lab(waits);
  thread_context tc;
  thread_children spawner(tc);
  work_context c = tc.ctx();
  c.children = &spawner;
  for (int v : {cpu_fanout_lab::sequential, cpu_fanout_lab::concurrent}) {
    auto r = lab.run(v, 4, 20, c).run_inline();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_GE(field(r.body, "wall_ms"), 79) << r.body;  // 4 × 20 ms of CPU on one thread
    EXPECT_EQ(field(r.body, "work_ms"), 80);
  }
  auto r = lab.run(cpu_fanout_lab::parallel, 4, 20, c).run_inline();
  ASSERT_EQ(r.status, 200) << r.body;
  // Each child burns 20 ms of its own thread's CPU, on a thread of its own: the wall time is
  // at least one child's. How much less than all four it is depends on the cores free (the
  // integration test and the lesson measure it).
  EXPECT_GE(field(r.body, "wall_ms"), 19) << r.body;
  {
    std::lock_guard l(spawner.m);
    EXPECT_EQ(spawner.threads.size(), 4u);
  }
  EXPECT_EQ(lab.read(cpu_fanout_lab::parallel).runs, 1);
  EXPECT_NEAR(lab.read(cpu_fanout_lab::sequential).work_seconds, 0.08, 1e-9);
}

TEST(CpuFanoutLabTest, children_the_executor_drops_unrun_end_it_with_503) {
  wait_list waits;
  cpu_fanout_lab lab(waits);
  thread_context tc;
  work_context c = tc.ctx();  // no spawner: every child is dropped
  auto r = lab.run(cpu_fanout_lab::parallel, 3, 1, c).run_inline();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("child_refused"), std::string::npos) << r.body;
}

TEST(CacheLabTest, unbounded_starts_a_cleanup_per_eviction_and_stops_at_the_ceiling) {
  wait_list waits;
  cache_lab lab(waits);
  held_children pool;
  thread_context tc;
  work_context c = tc.ctx();
  c.children = &pool;
  const cache_lab::limits lim{.entries = 2, .queue = 1, .max_cleanups = 3};
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(lab.run(cache_lab::unbounded, 1, lim, c).run_inline().status, 200);
  auto f = lab.read(cache_lab::unbounded);
  EXPECT_EQ(f.entries, 2);
  EXPECT_EQ(f.cleanups, 3);  // three evictions, three cleanups handed to the mode at once
  auto r = lab.run(cache_lab::unbounded, 1, lim, c).run_inline();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("cleanup_ceiling"), std::string::npos) << r.body;
  pool.run_all(tc);
  f = lab.read(cache_lab::unbounded);
  EXPECT_EQ(f.cleanups, 0);
  EXPECT_EQ(f.done, 3);
  EXPECT_GT(f.cpu_seconds, 0.002);
}

TEST(CacheLabTest, bounded_queues_for_one_drainer_and_a_full_queue_makes_the_put_wait) {
  wait_list waits;
  cache_lab lab(waits);
  held_children pool;
  thread_context tc;
  const cache_lab::limits lim{.entries = 1, .queue = 2, .max_cleanups = 100};
  auto put = [&] {
    return std::async(std::launch::async, [&] {
      work_context c = tc.ctx();
      c.children = &pool;
      return lab.run(cache_lab::bounded, 1, lim, c).run_inline();
    });
  };
  put().get();  // fills the cache
  put().get();  // evicts: queued, and the drainer handed to the mode
  put().get();  // evicts: queued behind it
  {
    std::lock_guard l(pool.m);
    EXPECT_EQ(pool.held.size(), 1u);  // one drainer, not one task per cleanup
  }
  auto waiting = put();  // the queue is full: this put waits for room
  ASSERT_TRUE(eventually([&] { return lab.read(cache_lab::bounded).waiting == 1; }));
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout);
  pool.run_all(tc);  // the drainer cleans all three, the waiting put's among them
  EXPECT_EQ(waiting.get().status, 200);
  auto f = lab.read(cache_lab::bounded);
  EXPECT_EQ(f.done, 3);
  EXPECT_EQ(f.cleanups, 0);
  EXPECT_EQ(f.waiting, 0);
}

}  // namespace
}  // namespace stampede
