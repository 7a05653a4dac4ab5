#include "server/modes/coroutine.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "handlers/work.hpp"
#include "task_helpers.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;

/// A task running a real workload (the same job every mode runs), with an awaitable end.
struct work {
  std::shared_ptr<task> t;
  std::promise<void> done;
  std::future<void> ended = done.get_future();
  bool finished_within(std::chrono::milliseconds d) {
    return ended.wait_for(d) == std::future_status::ready;
  }
};

std::shared_ptr<work> make_work(metrics& m, handler_id h, work_params p, downstream* ds = nullptr) {
  auto w = std::make_shared<work>();
  p.kb = 0;
  w->t = std::make_shared<task>(
      task::body_fn([h, p](const work_context& ctx) { return handle(h, p, ctx); }),
      mode_kind::coroutine, m.for_mode(mode_kind::coroutine), ds);
  std::weak_ptr<work> weak = w;
  w->t->on_done = [weak] {
    if (auto self = weak.lock()) self->done.set_value();
  };
  return w;
}

config coroutine_config(int threads, int max_tasks = 0) {
  config c;
  c.coroutine.threads = threads;
  c.coroutine.max_tasks = max_tasks;
  c.coroutine.cancel_on_disconnect = true;
  return c;
}

TEST(CoroutineTest, past_max_tasks_answers_task_limit_and_never_exceeds_it) {
  metrics stats;
  auto& mm = stats.for_mode(mode_kind::coroutine);
  coroutine_policy p(coroutine_config(2, 3), stats);
  std::vector<std::shared_ptr<work>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(make_work(stats, handler_id::io, {.ms = 60000}));
    p.submit(slow.back()->t);
  }
  auto extra = make_work(stats, handler_id::io, {.ms = 1});
  p.submit(extra->t);
  ASSERT_TRUE(extra->finished_within(0ms));  // answered inside submit, no thread involved
  ASSERT_NE(extra->t->rejected(), nullptr);
  EXPECT_EQ(extra->t->rejected()->reason, "task_limit");
  EXPECT_EQ(extra->t->retry_after_s(), 1);
  EXPECT_EQ(p.live_tasks(), 3);
  EXPECT_EQ(mm.rejection_for("task_limit").counted->Value(), 1);
  for (auto& w : slow) p.client_gone(w->t);
  for (auto& w : slow) ASSERT_TRUE(w->finished_within(5s));
  EXPECT_EQ(p.live_tasks(), 0);
  // Room again.
  auto after = make_work(stats, handler_id::healthz, {});
  p.submit(after->t);
  ASSERT_TRUE(after->finished_within(5s));
  EXPECT_FALSE(after->t->rejected());
}

TEST(CoroutineTest, a_task_whose_client_left_before_it_started_never_runs) {
  metrics stats;
  auto& mm = stats.for_mode(mode_kind::coroutine);
  coroutine_policy p(coroutine_config(1), stats);
  auto w = make_work(stats, handler_id::io, {.ms = 60000});
  w->t->cancel_running();  // the client left before the task reached its thread
  p.submit(w->t);
  ASSERT_TRUE(w->finished_within(5s));
  EXPECT_FALSE(w->t->started());
  EXPECT_EQ(mm.cancelled_queued->Value(), 1);
  EXPECT_EQ(mm.tasks_started->Value(), 0);
  EXPECT_EQ(p.live_tasks(), 0);
}

TEST(CoroutineTest, a_task_waiting_on_a_timer_stops_when_its_client_leaves) {
  metrics stats;
  coroutine_policy p(coroutine_config(1), stats);
  auto w = make_work(stats, handler_id::io, {.ms = 60000});
  p.submit(w->t);
  for (int i = 0; i < 2000 && !w->t->started(); ++i) std::this_thread::sleep_for(1ms);
  p.client_gone(w->t);
  ASSERT_TRUE(w->finished_within(5s));
  EXPECT_EQ(w->t->result().status, 503);
  EXPECT_NE(w->t->result().body.find("\"reason\":\"cancelled\""), std::string::npos);
  EXPECT_EQ(stats.for_mode(mode_kind::coroutine).cancelled_running->Value(), 1);
}

TEST(CoroutineTest, a_task_waiting_in_line_for_the_downstream_leaves_the_line_when_stopped) {
  metrics stats;
  downstream ds(1);
  coroutine_policy p(coroutine_config(1), stats);
  auto holder = make_work(stats, handler_id::io, {.ms = 60000}, &ds);
  auto waiter = make_work(stats, handler_id::io, {.ms = 10}, &ds);
  p.submit(holder->t);
  p.submit(waiter->t);
  for (int i = 0; i < 2000 && ds.stats().waiting == 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(ds.stats().waiting, 1);
  ASSERT_EQ(ds.stats().in_use, 1);
  p.client_gone(waiter->t);
  ASSERT_TRUE(waiter->finished_within(5s));
  EXPECT_EQ(ds.stats().waiting, 0);
  EXPECT_EQ(ds.stats().in_use, 1);  // the holder still has its slot
  p.client_gone(holder->t);
  ASSERT_TRUE(holder->finished_within(5s));
  EXPECT_EQ(ds.stats().in_use, 0);
}

TEST(CoroutineTest, a_waiter_in_line_gets_the_slot_when_it_is_freed) {
  metrics stats;
  downstream ds(1);
  coroutine_policy p(coroutine_config(2), stats);
  std::vector<std::shared_ptr<work>> all;
  for (int i = 0; i < 5; ++i) {
    all.push_back(make_work(stats, handler_id::io, {.ms = 20}, &ds));
    p.submit(all.back()->t);
  }
  for (auto& w : all) {
    ASSERT_TRUE(w->finished_within(5s));
    EXPECT_EQ(w->t->result().status, 200);
  }
  EXPECT_EQ(ds.stats().in_use, 0);
  EXPECT_EQ(ds.stats().waiting, 0);
}

TEST(CoroutineTest, cpu_work_yields_to_other_tasks_on_its_thread) {
  metrics stats;
  coroutine_policy p(coroutine_config(1), stats);
  auto cpu = make_work(stats, handler_id::cpu, {.ms = 400});
  auto quick = make_work(stats, handler_id::healthz, {});
  p.submit(cpu->t);
  for (int i = 0; i < 2000 && !cpu->t->started(); ++i) std::this_thread::sleep_for(1ms);
  p.submit(quick->t);
  ASSERT_TRUE(quick->finished_within(5s));
  // One thread: the short task ran between the CPU task's slices, before it ended.
  EXPECT_FALSE(cpu->finished_within(0ms));
  ASSERT_TRUE(cpu->finished_within(10s));
  EXPECT_EQ(cpu->t->result().status, 200);
}

TEST(CoroutineTest, a_parallel_fan_out_is_a_task_per_fetch_limited_by_fanout_limit) {
  metrics stats;
  config c = coroutine_config(1);
  c.coroutine.fanout_limit = 2;
  coroutine_policy p(c, stats);
  auto w = make_work(stats, handler_id::fanout, {.ms = 50, .n = 4, .parallel = true});
  auto begin = steady::now();
  p.submit(w->t);
  ASSERT_TRUE(w->finished_within(5s));
  auto took = steady::now() - begin;
  EXPECT_NE(w->t->result().body.find("\"fetched\":4"), std::string::npos);
  // Two at a time: two rounds of 50 ms, not one.
  EXPECT_GE(took, 100ms);
}

}  // namespace
}  // namespace stampede
