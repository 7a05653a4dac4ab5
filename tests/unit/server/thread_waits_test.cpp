#include "server/modes/thread_waits.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "handlers/work.hpp"
#include "task_helpers.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST(ThreadWaitsTest, multiplexed_fetches_respect_the_limit) {
  std::stop_source never;
  auto start = clock_type::now();
  // 6 fetches of 20 ms, 2 at a time: three rounds, never fewer.
  EXPECT_EQ(multiplexed_fetches(6, 2, 20ms, nullptr, {}, never.get_token(), nullptr), 6);
  EXPECT_GE(clock_type::now() - start, 60ms);
}

TEST(ThreadWaitsTest, multiplexed_fetches_stop_early) {
  std::stop_source stop;
  auto stopper = testing::stop_after(stop, 20ms);
  auto start = clock_type::now();
  EXPECT_EQ(multiplexed_fetches(5, 5, 10s, nullptr, {}, stop.get_token(), nullptr), 0);
  EXPECT_GE(clock_type::now() - start, 15ms);
  EXPECT_LT(clock_type::now() - start, 5s);
}

TEST(ThreadWaitsTest, multiplexed_fetches_share_the_downstream) {
  downstream d(1);
  std::stop_source never;
  auto start = clock_type::now();
  // Limit 4, but the downstream serves one at a time: four rounds.
  EXPECT_EQ(multiplexed_fetches(4, 4, 20ms, &d, {}, never.get_token(), nullptr), 4);
  EXPECT_GE(clock_type::now() - start, 80ms);
  EXPECT_EQ(d.stats().in_use, 0);
}

TEST(ThreadWaitsTest, stopped_fetches_free_their_slots) {
  downstream d(2);
  std::stop_source stop;
  auto stopper = testing::stop_after(stop, 20ms);
  EXPECT_EQ(multiplexed_fetches(5, 5, 10s, &d, {}, stop.get_token(), nullptr), 0);
  EXPECT_EQ(d.stats().in_use, 0);
  EXPECT_EQ(d.stats().waiting, 0);
}

TEST(ThreadWaitsTest, a_parallel_fanout_keeps_to_the_limit) {
  // Through the handler, as a worker runs it: 6 fetches of 20 ms, 3 at a time, then no limit.
  std::stop_source never;
  thread_waits waits(3);
  work_context ctx{never.get_token(), &waits, "test"};
  auto start = clock_type::now();
  auto r = run_handler(handler_id::fanout, work_params{20, 6, true, 0}, ctx);
  auto limited = clock_type::now() - start;
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"fetched\":6"), std::string::npos) << r.body;
  EXPECT_GE(limited, 40ms);
  waits.set_fanout_limit(0);
  start = clock_type::now();
  r = run_handler(handler_id::fanout, work_params{20, 6, true, 0}, ctx);
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(clock_type::now() - start, limited);
}

TEST(ThreadWaitsTest, every_wait_ends_on_the_calling_thread) {
  std::stop_source never;
  thread_waits waits(0);
  work_context ctx{never.get_token(), &waits, "test"};
  auto caller = std::this_thread::get_id();
  auto body = [](const work_context& c, std::thread::id caller) -> job<bool> {
    bool slept = co_await c.sleep_for(5ms);
    co_await c.yield();
    co_return slept&& std::this_thread::get_id() == caller;
  };
  EXPECT_TRUE(body(ctx, caller).run_inline());
}

}  // namespace
}  // namespace stampede
