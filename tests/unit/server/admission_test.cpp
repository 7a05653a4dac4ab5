#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "server/fixed_limit.hpp"

namespace stampede {
namespace {

TEST(AdmissionTest, a_fixed_limit_admits_up_to_its_limit_and_again_after_a_release) {
  fixed_limit l(2);
  EXPECT_TRUE(l.try_acquire());
  EXPECT_TRUE(l.try_acquire());
  EXPECT_FALSE(l.try_acquire());
  EXPECT_EQ(l.in_use(), 2);
  l.release(std::chrono::milliseconds(1), true);
  EXPECT_TRUE(l.try_acquire());
  l.set_limit(1);  // lowered below what is in use: refuses until enough have ended
  EXPECT_FALSE(l.try_acquire());
  l.release({}, true);
  EXPECT_FALSE(l.try_acquire());
  l.release({}, true);
  EXPECT_TRUE(l.try_acquire());
  fixed_limit none(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(none.try_acquire());
}

TEST(AdmissionTest, concurrent_callers_never_overshoot_a_fixed_limit) {
  fixed_limit l(5);
  std::atomic<int> holding{0};
  std::atomic<int> most{0};
  std::atomic<int> refused{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20000; ++i) {
          if (!l.try_acquire()) {
            ++refused;
            continue;
          }
          int now = ++holding;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          --holding;
          l.release({}, true);
        }
      });
    }
  }
  EXPECT_LE(most.load(), 5);
  EXPECT_EQ(l.in_use(), 0);
}

}  // namespace
}  // namespace stampede
