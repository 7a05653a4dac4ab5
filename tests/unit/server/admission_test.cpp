#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "server/execution_policy.hpp"

namespace stampede {
namespace {

using std::chrono::milliseconds;

limiter_settings with(std::string algorithm, int initial = 20, int min = 2, int max = 1000) {
  limiter_settings s;
  s.algorithm = std::move(algorithm);
  s.initial = initial;
  s.min = min;
  s.max = max;
  s.window_ms = 0;  // every sample updates the limit: the window has a test of its own
  return s;
}

TEST(AdmissionTest, near_the_limit_each_criticality_fills_only_its_share) {
  metrics m;
  auto& mm = m.for_mode(mode_kind::coroutine);
  const rejection* full = &mm.rejection_for("task_limit");
  auto s = with("none");
  s.sheddable_share = 20;
  s.sheddable_plus_share = 50;
  s.critical_share = 80;
  limiter l(10, full, s, mm);
  const rejection* shed = &mm.rejection_for(common_reason::shed);
  // SHEDDABLE fills 2 of the 10 places, SHEDDABLE_PLUS up to 5, CRITICAL up to 8.
  EXPECT_EQ(l.try_acquire(criticality::sheddable), nullptr);
  EXPECT_EQ(l.try_acquire(criticality::sheddable), nullptr);
  EXPECT_EQ(l.try_acquire(criticality::sheddable), shed);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l.try_acquire(criticality::sheddable_plus), nullptr);
  EXPECT_EQ(l.try_acquire(criticality::sheddable_plus), shed);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l.try_acquire(criticality::critical), nullptr);
  EXPECT_EQ(l.try_acquire(criticality::critical), shed);
  // CRITICAL_PLUS takes the last places, then meets the mode's own limit.
  EXPECT_EQ(l.try_acquire(criticality::critical_plus), nullptr);
  EXPECT_EQ(l.try_acquire(criticality::critical_plus), nullptr);
  EXPECT_EQ(l.try_acquire(criticality::critical_plus), full);
  EXPECT_EQ(l.in_use(), 10);
  const auto count = [&](criticality c, int refused) {
    return mm.admissions[static_cast<int>(c)][refused]->Value();
  };
  EXPECT_EQ(count(criticality::sheddable, 0), 2);
  EXPECT_EQ(count(criticality::sheddable, 1), 1);
  EXPECT_EQ(count(criticality::critical_plus, 0), 2);
  EXPECT_EQ(count(criticality::critical_plus, 1), 1);
  // A reload changes the shares at once; a mode with no limit sheds nothing.
  for (int i = 0; i < 10; ++i) l.release({}, request_end::ok);
  s.sheddable_share = 0;
  l.configure(s);
  EXPECT_EQ(l.try_acquire(criticality::sheddable), shed);
  limiter none(0, nullptr, s, mm);
  EXPECT_EQ(none.try_acquire(criticality::sheddable), nullptr);
}

TEST(AdmissionTest, a_fixed_limit_admits_up_to_its_limit_and_again_after_a_release) {
  metrics m;
  auto& mm = m.for_mode(mode_kind::bounded);
  const rejection* full = &mm.rejection_for("queue_full");
  limiter l(2, full, with("none"), mm);
  EXPECT_EQ(l.try_acquire(), nullptr);
  EXPECT_EQ(l.try_acquire(), nullptr);
  EXPECT_EQ(l.try_acquire(), full);
  EXPECT_EQ(l.in_use(), 2);
  EXPECT_EQ(mm.limit_inflight->Value(), 2);
  EXPECT_EQ(mm.limit->Value(), 2);
  l.release(milliseconds(1), request_end::ok);
  EXPECT_EQ(l.try_acquire(), nullptr);
  l.set_fixed(1);  // lowered below what is in use: refuses until enough have ended
  EXPECT_EQ(l.try_acquire(), full);
  l.release({}, request_end::ok);
  EXPECT_EQ(l.try_acquire(), full);
  l.release({}, request_end::ok);
  EXPECT_EQ(l.try_acquire(), nullptr);
  limiter none(0, nullptr, with("none"), mm);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(none.try_acquire(), nullptr);
  EXPECT_EQ(none.limit(), 0);
}

TEST(AdmissionTest, a_reason_is_made_once_per_mode_with_its_series_and_its_answer) {
  metrics m;
  auto& mm = m.for_mode(mode_kind::coroutine);
  const rejection& r = mm.rejection_for("task_limit");
  EXPECT_EQ(&mm.rejection_for("task_limit"), &r) << "made once, not per request";
  EXPECT_EQ(r.reason, "task_limit");
  EXPECT_FALSE(r.dropped);
  EXPECT_NE(r.body.find("\"reason\":\"task_limit\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"mode\":\"coroutine\""), std::string::npos) << r.body;
  EXPECT_NE(
      m.serialize().find("stampede_rejected_total{mode=\"coroutine\",reason=\"task_limit\"} 0"),
      std::string::npos);
  // Another mode's vocabulary is its own: no series of this reason for it.
  EXPECT_EQ(m.serialize().find("stampede_rejected_total{mode=\"bounded\",reason=\"task_limit\"}"),
            std::string::npos);
  EXPECT_TRUE(m.for_mode(mode_kind::bounded).rejection_for("queue_timeout", true).dropped);
}

TEST(AdmissionTest, the_adaptive_limit_refuses_as_over_limit_and_the_fixed_one_as_full) {
  metrics m;
  auto& mm = m.for_mode(mode_kind::coroutine);
  const rejection* full = &mm.rejection_for("task_limit");
  const rejection* over = &mm.rejection_for(common_reason::limit);
  limiter l(5, full, with("aimd", 3), mm);
  EXPECT_EQ(l.limit(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l.try_acquire(), nullptr);
  EXPECT_EQ(l.try_acquire(), over);
  // Three samples at full use: +1 each, until the fixed limit is the lower one.
  for (int i = 0; i < 3; ++i) {
    l.release(milliseconds(10), request_end::ok);
    EXPECT_EQ(l.try_acquire(), nullptr);
  }
  EXPECT_EQ(l.adaptive(), 6);
  EXPECT_EQ(l.limit(), 5);
  EXPECT_EQ(mm.limit->Value(), 5);
  EXPECT_EQ(l.try_acquire(), nullptr);
  EXPECT_EQ(l.try_acquire(), nullptr);
  EXPECT_EQ(l.try_acquire(), full);
}

TEST(AdmissionTest, a_client_that_left_teaches_the_limit_nothing) {
  metrics m;
  limiter l(0, nullptr, with("aimd", 10), m.for_mode(mode_kind::coroutine));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(l.try_acquire(), nullptr);
  for (int i = 0; i < 5; ++i) l.release(milliseconds(9000), request_end::ignored);
  EXPECT_EQ(l.adaptive(), 10);
  l.release(milliseconds(10), request_end::dropped);
  EXPECT_EQ(l.adaptive(), 9);
}

TEST(AdmissionTest, a_reload_keeps_the_limit_found_and_another_algorithm_starts_afresh) {
  metrics m;
  limiter l(0, nullptr, with("aimd", 10), m.for_mode(mode_kind::coroutine));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(l.try_acquire(), nullptr);
  l.release(milliseconds(10), request_end::dropped);
  EXPECT_EQ(l.adaptive(), 9);
  l.configure(with("aimd", 10, 2, 5));  // same algorithm, lower max: kept, clamped
  EXPECT_EQ(l.adaptive(), 5);
  l.configure(with("vegas", 30));
  EXPECT_EQ(l.adaptive(), 30);
  l.configure(with("none"));
  EXPECT_EQ(l.adaptive(), 0);
  EXPECT_EQ(l.limit(), 0);
}

TEST(AdmissionTest, a_window_updates_the_limit_once_from_its_samples) {
  metrics m;
  auto s = with("aimd", 10);
  s.window_ms = 60000;  // never over by time: only the sample count is in play below
  s.window_samples = 3;
  limiter l(0, nullptr, s, m.for_mode(mode_kind::coroutine));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(l.try_acquire(), nullptr);
  for (int i = 0; i < 5; ++i) l.release(milliseconds(10), request_end::ok);
  EXPECT_EQ(l.adaptive(), 10) << "the window is still open: no update yet";
  s.window_ms = 1;
  l.configure(s);
  std::this_thread::sleep_for(milliseconds(2));
  l.release(milliseconds(10), request_end::dropped);  // the window had a drop: one backoff
  EXPECT_EQ(l.adaptive(), 9);
}

TEST(AdmissionTest, concurrent_callers_never_overshoot_a_limit) {
  metrics m;
  limiter l(5, &m.for_mode(mode_kind::bounded).rejection_for("queue_full"), with("none"),
            m.for_mode(mode_kind::bounded));
  std::atomic<int> holding{0};
  std::atomic<int> most{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20000; ++i) {
          if (l.try_acquire() != nullptr) continue;
          int now = ++holding;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          --holding;
          l.release({}, request_end::ok);
        }
      });
    }
  }
  EXPECT_LE(most.load(), 5);
  EXPECT_EQ(l.in_use(), 0);
}

}  // namespace
}  // namespace stampede
