#include "server/modes/blocking.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "task_helpers.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::gate;
using testing::make_probe;

TEST(BlockingTest, runs_the_work_inline_before_submit_returns) {
  metrics stats;
  blocking_policy p(config{}, stats);
  const auto caller = std::this_thread::get_id();
  std::thread::id ran_on;
  auto t = std::make_shared<task>(
      [&](const work_context&) {
        ran_on = std::this_thread::get_id();
        return response{};
      },
      mode_kind::blocking, stats.for_mode(mode_kind::blocking));
  bool done = false;
  t->on_done = [&] { done = true; };
  p.submit(t);
  EXPECT_TRUE(done) << "completed before submit returned";
  EXPECT_EQ(ran_on, caller) << "on the submitting (I/O) thread";
  EXPECT_EQ(stats.for_mode(mode_kind::blocking).tasks_started->Value(), 1);
}

TEST(BlockingTest, one_request_at_a_time_and_the_next_waits_in_line) {
  metrics stats;
  gate g;
  auto& mm = stats.for_mode(mode_kind::blocking);
  blocking_policy p(config{}, stats);
  auto a = make_probe(mode_kind::blocking, stats, g);
  auto b = make_probe(mode_kind::blocking, stats, g);
  std::jthread first([&] { p.submit(a->t); });
  while (!a->started.load()) std::this_thread::sleep_for(1ms);
  std::jthread second([&] { p.submit(b->t); });
  // The second is in line at the lock, not running.
  for (int i = 0; i < 2000 && mm.tasks_queued->Value() < 1; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(mm.tasks_queued->Value(), 1);
  EXPECT_FALSE(b->started.load());
  EXPECT_EQ(mm.tasks_running->Value(), 1);
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
  EXPECT_TRUE(b->completed_within(5s));
  EXPECT_TRUE(b->started.load());
  EXPECT_EQ(mm.tasks_queued->Value(), 0);
}

TEST(BlockingTest, an_adaptive_limit_turns_away_the_line_at_the_lock) {
  metrics stats;
  gate g;
  config c;
  c.limiter.algorithm = "aimd";
  c.limiter.initial = c.limiter.min = c.limiter.max = 1;
  auto& mm = stats.for_mode(mode_kind::blocking);
  blocking_policy p(c, stats);
  auto a = make_probe(mode_kind::blocking, stats, g);
  auto b = make_probe(mode_kind::blocking, stats, g);
  std::jthread first([&] { p.submit(a->t); });
  while (!a->started.load()) std::this_thread::sleep_for(1ms);
  p.submit(b->t);  // returns at once: turned away, not in line
  EXPECT_TRUE(b->completed_within(0ms));
  ASSERT_NE(b->t->rejected(), nullptr);
  EXPECT_EQ(b->t->rejected()->reason, "limit");
  EXPECT_EQ(mm.rejection_for("limit").counted->Value(), 1);
  EXPECT_FALSE(b->started.load());
  g.release();
  EXPECT_TRUE(a->completed_within(5s));
}

TEST(BlockingTest, stop_all_stops_the_running_work_and_turns_away_what_comes_after) {
  metrics stats;
  gate g;  // never opened: only the stop ends the first task
  blocking_policy p(config{}, stats);
  auto a = make_probe(mode_kind::blocking, stats, g);
  std::jthread first([&] { p.submit(a->t); });
  while (!a->started.load()) std::this_thread::sleep_for(1ms);
  p.stop_all();
  EXPECT_TRUE(a->completed_within(5s));
  EXPECT_TRUE(a->saw_stop.load());
  auto b = make_probe(mode_kind::blocking, stats, g);
  p.submit(b->t);
  ASSERT_NE(b->t->rejected(), nullptr);
  EXPECT_EQ(b->t->rejected()->reason, "shutting_down");
  EXPECT_FALSE(b->started.load());
}

TEST(BlockingTest, child_work_runs_inline_before_the_request_goes_on) {
  metrics stats;
  gate g;
  g.release();
  blocking_policy p(config{}, stats);
  auto child = make_probe(mode_kind::blocking, stats, g);
  p.submit_child(child->t);
  EXPECT_TRUE(child->completed_within(0ms));
  EXPECT_TRUE(child->started.load());
}

}  // namespace
}  // namespace stampede
