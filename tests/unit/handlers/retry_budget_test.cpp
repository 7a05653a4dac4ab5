#include "handlers/retry_budget.hpp"

#include <gtest/gtest.h>

namespace stampede {
namespace {

TEST(RetryBudgetTest, no_budget_allows_every_retry) {
  retry_budget b(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.try_withdraw());
}

TEST(RetryBudgetTest, a_reserve_then_the_share_of_calls) {
  retry_budget b(20);
  // The reserve: three retries before any call has earned one.
  EXPECT_TRUE(b.try_withdraw());
  EXPECT_TRUE(b.try_withdraw());
  EXPECT_TRUE(b.try_withdraw());
  EXPECT_FALSE(b.try_withdraw());
  // Then one retry per five calls at 20 %.
  int allowed = 0;
  for (int call = 0; call < 100; ++call) {
    b.deposit();
    if (b.try_withdraw()) ++allowed;
  }
  EXPECT_EQ(allowed, 20);
}

TEST(RetryBudgetTest, a_quiet_period_saves_no_burst) {
  retry_budget b(10);
  for (int call = 0; call < 10000; ++call) b.deposit();
  int burst = 0;
  while (b.try_withdraw()) ++burst;
  EXPECT_EQ(burst, 10);  // the greater of the reserve (3) and the percent (10)
}

TEST(RetryBudgetTest, lowering_the_percent_lowers_the_balance) {
  retry_budget b(50);
  for (int call = 0; call < 1000; ++call) b.deposit();
  b.set_percent(5);
  EXPECT_LE(b.balance(), 5);
}

}  // namespace
}  // namespace stampede
