#include "server/modes/thread_per_request.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "handlers/work.hpp"
#include "task_helpers.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using testing::gate;
using testing::make_probe;

TEST(ThreadPerRequestTest, thread_per_fetch_completes_all) {
  std::stop_source never;
  EXPECT_EQ(thread_per_fetch(8, 5ms, nullptr, {}, never.get_token(), nullptr), 8);
}

TEST(ThreadPerRequestTest, stopped_fetch_threads_free_their_slots) {
  downstream d(2);
  std::stop_source stop;
  auto stopper = testing::stop_after(stop, 20ms);
  EXPECT_EQ(thread_per_fetch(3, 10s, &d, {}, stop.get_token(), nullptr), 0);
  EXPECT_EQ(d.stats().in_use, 0);
  EXPECT_EQ(d.stats().waiting, 0);
}

TEST(ThreadPerRequestTest, ceiling_answers_thread_ceiling) {
  metrics stats;
  gate g;
  config c;
  c.thread_per_request.max_threads = 2;
  auto& mm = stats.for_mode(mode_kind::thread_per_request);
  {
    thread_per_request_policy tpr(c, stats);
    auto a = make_probe(mode_kind::thread_per_request, stats, g);
    auto b = make_probe(mode_kind::thread_per_request, stats, g);
    auto x = make_probe(mode_kind::thread_per_request, stats, g);
    tpr.submit(a->t);
    tpr.submit(b->t);
    tpr.submit(x->t);
    EXPECT_TRUE(x->completed_within(0ms));
    ASSERT_NE(x->t->rejected(), nullptr);
    EXPECT_EQ(x->t->rejected()->reason, "thread_ceiling");
    EXPECT_EQ(mm.rejection_for("thread_ceiling").counted->Value(), 1);
    g.release();
    EXPECT_TRUE(a->completed_within(5s));
    EXPECT_TRUE(b->completed_within(5s));
  }
  EXPECT_EQ(mm.tasks_running->Value(), 0);
  EXPECT_EQ(
      stats.own_histogram("stampede_thread_spawn_seconds", "", {}).Collect().histogram.sample_count,
      2u);
}

TEST(ThreadPerRequestTest, disconnect_is_ignored_by_default_and_cancels_when_enabled) {
  for (bool cancel : {false, true}) {
    metrics stats;
    gate g;
    config c;
    c.thread_per_request.cancel_on_disconnect = cancel;
    thread_per_request_policy tpr(c, stats);
    auto a = make_probe(mode_kind::thread_per_request, stats, g);
    tpr.submit(a->t);
    for (int i = 0; i < 2000 && !a->started; ++i) std::this_thread::sleep_for(1ms);
    tpr.client_gone(a->t);
    EXPECT_EQ(a->completed_within(cancel ? 5000ms : 30ms), cancel) << "cancel=" << cancel;
    g.release();
    EXPECT_TRUE(a->completed_within(5s));
    EXPECT_EQ(a->saw_stop.load(), cancel);
  }
}

TEST(ThreadPerRequestTest, what_a_task_holds_is_released_before_the_policy_is_gone) {
  // A task's state can point into the server (a lab's list of leaked helpers): it must be
  // released before the policy's destructor returns, and the server after it is torn down.
  struct slow_to_release {
    std::atomic<bool>& released;
    ~slow_to_release() {
      std::this_thread::sleep_for(50ms);
      released = true;
    }
  };
  metrics stats;
  config c;
  std::atomic<bool> released{false};
  std::promise<void> done;
  {
    thread_per_request_policy tpr(c, stats);
    auto held = std::make_shared<slow_to_release>(released);
    auto t = std::make_shared<task>([held](const work_context&) { return response{}; },
                                    mode_kind::thread_per_request,
                                    stats.for_mode(mode_kind::thread_per_request));
    held.reset();
    t->on_done = [&done] { done.set_value(); };
    tpr.submit(std::move(t));
    ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  }
  EXPECT_TRUE(released.load());
}

}  // namespace
}  // namespace stampede
