#include <gtest/gtest.h>

#include <future>
#include <stop_token>
#include <thread>

#include "server/execution_policy.hpp"
#include "task_helpers.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::gate;
using testing::make_probe;

/// Runs `p`'s task on a thread of its own and returns once its body has started.
std::jthread start_running(const std::shared_ptr<testing::probe>& p) {
  std::jthread worker([p] { p->t->run(); });
  while (!p->started.load()) std::this_thread::sleep_for(1ms);
  return worker;
}

// A client that leaves after the policy took its task out of the queue, but before the body
// started, must not have the body run (the race the review found: 36 of 300 ran to the end).
TEST(TaskTest, client_gone_before_the_body_starts_means_it_never_starts) {
  metrics stats;
  gate g;
  auto& mm = stats.for_mode(mode_kind::bounded);
  auto p = make_probe(mode_kind::bounded, stats, g);
  g.release();  // a body that did start would finish at once (and be seen to have started)
  p->t->mark_queued();
  // A worker has popped it (it is no longer in the queue), and the client leaves now.
  p->t->cancel_running();
  EXPECT_TRUE(p->t->run());
  EXPECT_TRUE(p->completed_within(0ms));
  EXPECT_FALSE(p->started.load());
  EXPECT_EQ(p->t->result().status, 503);
  EXPECT_FALSE(p->t->started().has_value());
  EXPECT_EQ(mm.cancelled_queued->Value(), 1);
  EXPECT_EQ(mm.cancelled_running->Value(), 0);
  EXPECT_EQ(mm.tasks_started->Value(), 0);
  EXPECT_EQ(mm.tasks_queued->Value(), 0);
}

TEST(TaskTest, client_gone_before_a_thread_is_created_means_it_never_starts) {
  metrics stats;
  gate g;
  auto& mm = stats.for_mode(mode_kind::thread_per_request);
  auto p = make_probe(mode_kind::thread_per_request, stats, g);
  g.release();
  p->t->cancel_running();  // state created: the request thread has not run yet
  EXPECT_TRUE(p->t->run());
  EXPECT_FALSE(p->started.load());
  EXPECT_EQ(mm.cancelled_queued->Value(), 1);
}

TEST(TaskTest, client_gone_while_running_stops_the_body_and_counts_once) {
  metrics stats;
  gate g;
  auto& mm = stats.for_mode(mode_kind::bounded);
  auto p = make_probe(mode_kind::bounded, stats, g);
  auto worker = start_running(p);
  p->t->cancel_running();
  p->t->cancel_running();
  ASSERT_TRUE(p->completed_within(5s));
  worker.join();
  EXPECT_TRUE(p->saw_stop.load());
  EXPECT_EQ(mm.cancelled_running->Value(), 1);
  EXPECT_EQ(mm.cancelled_queued->Value(), 0);
}

// The body may end as soon as the stop is asked for, before cancel_running has looked at the
// state again: the cancellation that stopped it must be counted all the same. Here the body
// ends (and the task completes) inside request_stop, which a preempted I/O thread makes real.
TEST(TaskTest, a_body_that_ends_at_once_when_stopped_is_still_counted_as_cancelled) {
  metrics stats;
  auto& mm = stats.for_mode(mode_kind::bounded);
  std::atomic<bool> started{false};
  std::stop_token seen;
  std::promise<void> done;
  auto done_future = done.get_future().share();
  auto t = std::make_shared<task>(
      [&](const work_context& ctx) {
        seen = ctx.stop;
        started = true;
        while (!ctx.stop.stop_requested()) std::this_thread::yield();
        return response{};
      },
      mode_kind::bounded, mm);
  t->on_done = [&] { done.set_value(); };
  std::jthread worker([&] { t->run(); });
  while (!started.load()) std::this_thread::sleep_for(1ms);
  // Runs inside request_stop, on this thread: holds it there until the task has completed.
  std::stop_callback hold(seen, [&] { done_future.wait_for(5s); });
  t->cancel_running();
  ASSERT_EQ(done_future.wait_for(0ms), std::future_status::ready);
  worker.join();
  EXPECT_EQ(mm.cancelled_running->Value(), 1);
  EXPECT_EQ(mm.cancelled_queued->Value(), 0);
}

TEST(TaskTest, shutdown_stop_is_not_a_client_cancellation) {
  metrics stats;
  gate g;
  auto& mm = stats.for_mode(mode_kind::bounded);
  auto p = make_probe(mode_kind::bounded, stats, g);
  auto worker = start_running(p);
  p->t->request_stop();
  ASSERT_TRUE(p->completed_within(5s));
  EXPECT_TRUE(p->saw_stop.load());
  EXPECT_EQ(mm.cancelled_running->Value() + mm.cancelled_queued->Value(), 0);
}

}  // namespace
}  // namespace stampede
