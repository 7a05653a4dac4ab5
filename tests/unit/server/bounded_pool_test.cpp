#include "server/modes/bounded_pool.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "task_helpers.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::gate;
using testing::make_probe;

config pool_config(int workers, int capacity, int timeout_ms = 60000) {
  config c;
  c.mode = mode_kind::bounded;
  c.bounded.workers = workers;
  c.bounded.queue_capacity = capacity;
  c.bounded.queue_timeout_ms = timeout_ms;
  return c;
}

// Waits (bounded) until `pred` holds; the policy's threads make progress on their own.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 2000 && !pred(); ++i) std::this_thread::sleep_for(1ms);
  return pred();
}

class BoundedPoolTest : public ::testing::Test {
 protected:
  metrics stats;
  gate g;
  mode_metrics& mm = stats.for_mode(mode_kind::bounded);

  /// Probes submitted to `pool` (one worker): the first running, the second in the queue.
  std::pair<std::shared_ptr<testing::probe>, std::shared_ptr<testing::probe>>
  one_running_one_queued(bounded_pool_policy& pool) {
    auto a = make_probe(mode_kind::bounded, stats, g);
    auto b = make_probe(mode_kind::bounded, stats, g);
    pool.submit(a->t);
    EXPECT_TRUE(eventually([&] { return a->started.load(); }));
    pool.submit(b->t);
    return {a, b};
  }
};

TEST_F(BoundedPoolTest, full_queue_rejects_at_once_without_running) {
  bounded_pool_policy pool(pool_config(1, 1), stats);
  auto a = make_probe(mode_kind::bounded, stats, g);
  auto b = make_probe(mode_kind::bounded, stats, g);
  auto c = make_probe(mode_kind::bounded, stats, g);
  pool.submit(a->t);
  ASSERT_TRUE(eventually([&] { return a->started.load(); }));
  pool.submit(b->t);  // waits in the queue
  pool.submit(c->t);  // queue full
  EXPECT_TRUE(c->completed_within(0ms)) << "a full queue must answer before submit returns";
  ASSERT_NE(c->t->rejected(), nullptr);
  EXPECT_EQ(c->t->rejected()->reason, "queue_full");
  EXPECT_FALSE(c->started);
  EXPECT_EQ(mm.rejection_for("queue_full").counted->Value(), 1);
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
  EXPECT_TRUE(b->completed_within(5s));
  EXPECT_FALSE(b->t->rejected());
}

TEST_F(BoundedPoolTest, queue_timeout_answers_without_running) {
  bounded_pool_policy pool(pool_config(1, 4, 50), stats);
  auto [a, b] = one_running_one_queued(pool);
  // The worker is still busy: the supervisor must answer b when its time is up.
  EXPECT_TRUE(b->completed_within(5s));
  ASSERT_NE(b->t->rejected(), nullptr);
  EXPECT_EQ(b->t->rejected()->reason, "queue_timeout");
  EXPECT_FALSE(b->started);
  EXPECT_FALSE(a->done_future.wait_for(0ms) == std::future_status::ready);
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
}

TEST_F(BoundedPoolTest, a_queue_timeout_shortened_by_a_reload_holds_for_work_admitted_after_it) {
  // An idle supervisor sleeps one queue timeout at a time (60 s here), and work entering the
  // queue wakes it only if that work is due sooner. A reload to 50 ms must not leave work
  // admitted after it waiting the old 60 s (fails if neither the reload nor the submit wakes it).
  config c = pool_config(1, 4, 60000);
  bounded_pool_policy pool(c, stats);
  std::this_thread::sleep_for(20ms);  // the supervisor is asleep, idle
  c.bounded.queue_timeout_ms = 50;
  pool.reconfigure(c);
  auto a = make_probe(mode_kind::bounded, stats, g);
  pool.submit(a->t);
  ASSERT_TRUE(eventually([&] { return a->started.load(); }));
  auto b = make_probe(mode_kind::bounded, stats, g);
  pool.submit(b->t);
  EXPECT_TRUE(b->completed_within(5s));
  ASSERT_NE(b->t->rejected(), nullptr);
  EXPECT_EQ(b->t->rejected()->reason, "queue_timeout");
  EXPECT_GE(steady::now() - b->t->admitted(), 50ms) << "answered before its time was up";
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
}

TEST_F(BoundedPoolTest, disconnect_removes_queued_work) {
  bounded_pool_policy pool(pool_config(1, 4), stats);
  auto [a, b] = one_running_one_queued(pool);
  EXPECT_EQ(stats.own_gauge("stampede_queue_depth", "", "").Value(), 1);
  pool.client_gone(b->t);
  EXPECT_TRUE(b->completed_within(0ms));
  EXPECT_TRUE(b->t->cancelled_in_queue());
  EXPECT_EQ(stats.own_gauge("stampede_queue_depth", "", "").Value(), 0);
  EXPECT_EQ(mm.cancelled_queued->Value(), 1);
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(b->started) << "cancelled queued work must never run";
}

TEST_F(BoundedPoolTest, disconnect_stops_running_work_and_frees_the_worker) {
  bounded_pool_policy pool(pool_config(1, 4), stats);
  auto a = make_probe(mode_kind::bounded, stats, g);
  pool.submit(a->t);
  ASSERT_TRUE(eventually([&] { return a->started.load(); }));
  pool.client_gone(a->t);
  EXPECT_TRUE(a->completed_within(5s));
  EXPECT_TRUE(a->saw_stop);
  EXPECT_EQ(mm.cancelled_running->Value(), 1);
  // The freed worker takes the next item.
  gate open;
  open.release();
  auto b = make_probe(mode_kind::bounded, stats, open);
  pool.submit(b->t);
  EXPECT_TRUE(b->completed_within(5s));
}

TEST_F(BoundedPoolTest, without_cancel_on_disconnect_work_runs_on) {
  auto c = pool_config(1, 4);
  c.bounded.cancel_on_disconnect = false;
  bounded_pool_policy pool(c, stats);
  auto a = make_probe(mode_kind::bounded, stats, g);
  pool.submit(a->t);
  ASSERT_TRUE(eventually([&] { return a->started.load(); }));
  pool.client_gone(a->t);
  EXPECT_FALSE(a->completed_within(30ms));
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
  EXPECT_FALSE(a->saw_stop);
}

TEST_F(BoundedPoolTest, workers_are_fixed_and_resize_live) {
  bounded_pool_policy pool(pool_config(3, 100), stats);
  std::vector<std::shared_ptr<testing::probe>> probes;
  for (int i = 0; i < 10; ++i) {
    probes.push_back(make_probe(mode_kind::bounded, stats, g));
    pool.submit(probes.back()->t);
  }
  ASSERT_TRUE(eventually([&] { return mm.tasks_running->Value() == 3; }));
  EXPECT_EQ(mm.tasks_queued->Value(), 7);
  auto c = pool_config(5, 100);
  pool.reconfigure(c);
  EXPECT_TRUE(eventually([&] { return mm.tasks_running->Value() == 5; }));
  EXPECT_EQ(stats.own_gauge("stampede_pool_workers", "", "").Value(), 5);
  g.release();
  for (auto& p : probes) EXPECT_TRUE(p->completed_within(5s));
}

TEST_F(BoundedPoolTest, stop_all_rejects_queued_and_stops_running) {
  bounded_pool_policy pool(pool_config(1, 4), stats);
  auto [a, b] = one_running_one_queued(pool);
  pool.stop_all();
  EXPECT_TRUE(b->completed_within(1s));
  ASSERT_NE(b->t->rejected(), nullptr);
  EXPECT_EQ(b->t->rejected()->reason, "shutting_down");
  EXPECT_TRUE(a->completed_within(5s));
  EXPECT_TRUE(a->saw_stop);
  auto c = make_probe(mode_kind::bounded, stats, g);
  pool.submit(c->t);
  ASSERT_NE(c->t->rejected(), nullptr);
  EXPECT_EQ(c->t->rejected()->reason, "shutting_down");
}

TEST_F(BoundedPoolTest, parallel_fanout_takes_no_extra_worker) {
  // One worker: a fan-out of 8 parallel fetches must complete on it, without deadlock.
  bounded_pool_policy pool(pool_config(1, 0), stats);
  std::promise<void> done;
  auto t = std::make_shared<task>(
      [](const work_context& ctx) {
        return run_handler(handler_id::fanout, work_params{10, 8, true}, ctx);
      },
      mode_kind::bounded, mm);
  t->on_done = [&] { done.set_value(); };
  pool.submit(t);
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ(t->result().status, 200);
  EXPECT_NE(t->result().body.find("\"fetched\":8"), std::string::npos);
}

}  // namespace
}  // namespace stampede
