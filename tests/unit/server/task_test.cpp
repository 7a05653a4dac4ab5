#include <gtest/gtest.h>

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
  std::jthread worker([p] { p->t->run(nullptr); });
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
  EXPECT_TRUE(p->t->run(nullptr));
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
  EXPECT_TRUE(p->t->run(nullptr));
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
