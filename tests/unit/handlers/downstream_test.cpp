#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "handlers/work.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// Polls until `pred` holds or 5 s pass.
template <typename Pred>
bool eventually(Pred pred) {
  auto until = clock_type::now() + 5s;
  while (!pred()) {
    if (clock_type::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(DownstreamTest, unlimited_never_waits) {
  downstream d(0);
  std::stop_source never;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(d.try_acquire());
  EXPECT_EQ(d.stats().in_use, 100);
  EXPECT_EQ(d.stats().waiting, 0);
  for (int i = 0; i < 100; ++i) d.release();
  EXPECT_EQ(d.stats().in_use, 0);
}

TEST(DownstreamTest, capacity_is_never_exceeded) {
  downstream d(3);
  std::atomic<int> now{0}, most{0};
  std::stop_source never;
  std::vector<std::jthread> callers;
  for (int i = 0; i < 24; ++i) {
    callers.emplace_back([&] {
      ASSERT_TRUE(d.acquire(never.get_token()));
      int n = ++now;
      int seen = most.load();
      while (n > seen && !most.compare_exchange_weak(seen, n)) {
      }
      std::this_thread::sleep_for(2ms);
      --now;
      d.release();
    });
  }
  callers.clear();
  // The invariant: never more than the capacity at once (how close it gets depends on the
  // scheduler, e.g. under ThreadSanitizer threads barely overlap).
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
  EXPECT_EQ(d.stats().in_use, 0);
  EXPECT_EQ(d.stats().waiting, 0);
}

TEST(DownstreamTest, waiters_are_served_first_come_first_served) {
  downstream d(1);
  std::stop_source never;
  ASSERT_TRUE(d.acquire(never.get_token()));  // the one slot, held by the test
  std::mutex m;
  std::vector<int> order;
  std::vector<std::jthread> callers;
  for (int i = 0; i < 5; ++i) {
    callers.emplace_back([&, i] {
      ASSERT_TRUE(d.acquire(never.get_token()));
      {
        std::lock_guard lock(m);
        order.push_back(i);
      }
      d.release();
    });
    // Each caller is in line before the next starts.
    ASSERT_TRUE(eventually([&] { return d.stats().waiting == i + 1; }));
  }
  d.release();
  callers.clear();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(DownstreamTest, try_acquire_does_not_jump_the_line) {
  downstream d(1);
  std::stop_source never;
  ASSERT_TRUE(d.acquire(never.get_token()));
  std::jthread waiting([&] {
    ASSERT_TRUE(d.acquire(never.get_token()));
    d.release();
  });
  ASSERT_TRUE(eventually([&] { return d.stats().waiting == 1; }));
  EXPECT_FALSE(d.try_acquire());
  d.release();  // goes to the waiter, not to a later try_acquire
  waiting.join();
  EXPECT_TRUE(d.try_acquire());
  d.release();
}

TEST(DownstreamTest, cancelled_while_waiting_leaves_the_line_holding_nothing) {
  downstream d(1);
  std::stop_source never, stop;
  ASSERT_TRUE(d.acquire(never.get_token()));
  std::atomic<bool> got{true};
  std::jthread waiter([&] { got = d.acquire(stop.get_token()); });
  ASSERT_TRUE(eventually([&] { return d.stats().waiting == 1; }));
  stop.request_stop();
  waiter.join();
  EXPECT_FALSE(got.load());
  EXPECT_EQ(d.stats().waiting, 0);
  EXPECT_EQ(d.stats().in_use, 1);  // only the test's own slot
  d.release();
  EXPECT_EQ(d.stats().in_use, 0);
}

TEST(DownstreamTest, cancelled_while_holding_frees_the_slot) {
  downstream d(1);
  std::stop_source stop, never;
  std::atomic<bool> finished{true};
  auto start = clock_type::now();
  std::jthread caller([&] { finished = d.call(60s, stop.get_token()); });
  ASSERT_TRUE(eventually([&] { return d.stats().in_use == 1; }));
  stop.request_stop();
  caller.join();
  EXPECT_FALSE(finished.load());
  EXPECT_LT(clock_type::now() - start, 30s);
  EXPECT_EQ(d.stats().in_use, 0);
  EXPECT_TRUE(d.try_acquire());  // the slot is really free
  d.release();
}

TEST(DownstreamTest, calls_beyond_capacity_take_turns) {
  downstream d(2);
  std::stop_source never;
  auto start = clock_type::now();
  std::vector<std::jthread> callers;
  for (int i = 0; i < 6; ++i)
    callers.emplace_back([&] { EXPECT_TRUE(d.call(40ms, never.get_token())); });
  callers.clear();
  // Six 40 ms calls, two at a time: three rounds.
  EXPECT_GE(clock_type::now() - start, 120ms);
}

TEST(DownstreamTest, raising_capacity_live_lets_waiters_in) {
  downstream d(1);
  std::stop_source never;
  ASSERT_TRUE(d.acquire(never.get_token()));
  std::vector<std::jthread> callers;
  std::atomic<int> in{0};
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&] {
      ASSERT_TRUE(d.acquire(never.get_token()));
      ++in;
    });
  }
  ASSERT_TRUE(eventually([&] { return d.stats().waiting == 3; }));
  d.set_capacity(4);
  ASSERT_TRUE(eventually([&] { return in.load() == 3; }));
  EXPECT_EQ(d.stats().in_use, 4);
  EXPECT_EQ(d.stats().capacity, 4);
  callers.clear();
  for (int i = 0; i < 4; ++i) d.release();
}

TEST(DownstreamTest, cutting_capacity_live_admits_no_one_until_below_it) {
  downstream d(3);
  std::stop_source never;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(d.try_acquire());
  d.set_capacity(1);
  d.release();  // 2 in use, capacity 1
  EXPECT_FALSE(d.try_acquire());
  d.release();  // 1 in use
  EXPECT_FALSE(d.try_acquire());
  d.release();  // 0 in use
  EXPECT_TRUE(d.try_acquire());
  d.release();
}

TEST(DownstreamTest, reports_each_wait) {
  downstream d(1);
  std::vector<double> waits;
  std::mutex m;
  d.on_wait = [&](double s) {
    std::lock_guard lock(m);
    waits.push_back(s);
  };
  std::stop_source never;
  ASSERT_TRUE(d.acquire(never.get_token()));
  std::jthread waiter([&] {
    ASSERT_TRUE(d.acquire(never.get_token()));
    d.release();
  });
  ASSERT_TRUE(eventually([&] { return d.stats().waiting == 1; }));
  std::this_thread::sleep_for(30ms);
  d.release();
  waiter.join();
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_EQ(waits[0], 0.0);
  EXPECT_GE(waits[1], 0.025);
}

}  // namespace
}  // namespace stampede
