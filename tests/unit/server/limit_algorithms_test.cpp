#include "server/limit_algorithms.hpp"

#include <gtest/gtest.h>

#include <functional>

namespace stampede {
namespace {

limiter_settings settings(int initial = 20, int min = 2, int max = 200) {
  limiter_settings s;
  s.initial = initial;
  s.min = min;
  s.max = max;
  return s;
}

/// Feeds `n` samples of `rtt_ms`, each with the limit fully in use; returns the last limit.
double feed(limit_algorithm& a, int n, double rtt_ms, bool dropped = false) {
  for (int i = 0; i < n; ++i) {
    a.update({rtt_ms, static_cast<int>(a.limit()), dropped});
  }
  return a.limit();
}

template <class Algorithm>
void grows_when_flat_and_shrinks_when_rtt_rises(double rtt_rise_factor, bool drop_on_rise) {
  Algorithm a(settings());
  const double grown = feed(a, 300, 10.0);
  EXPECT_GT(grown, 25) << "flat RTT, limit in use: grows";
  const double shrunk = feed(a, 60, 10.0 * rtt_rise_factor, drop_on_rise);
  EXPECT_LT(shrunk, grown * 0.7) << "RTT rose: shrinks";
}

TEST(LimitAlgorithmsTest, aimd_grows_while_in_use_and_backs_off_on_a_drop) {
  grows_when_flat_and_shrinks_when_rtt_rises<aimd_limit>(1.0, true);
  // A limit far from used (in flight < limit / 2) does not grow.
  aimd_limit a(settings());
  for (int i = 0; i < 100; ++i) a.update({10.0, 5, false});
  EXPECT_EQ(a.limit(), 20);
  // Slower than aimd_timeout_ms counts as a drop.
  a.update({6000.0, 20, false});
  EXPECT_EQ(a.limit(), 18);
}

TEST(LimitAlgorithmsTest, gradient2_grows_when_rtt_is_flat_and_shrinks_when_it_rises) {
  grows_when_flat_and_shrinks_when_rtt_rises<gradient2_limit>(4.0, false);
}

TEST(LimitAlgorithmsTest, vegas_grows_when_rtt_is_flat_and_shrinks_when_it_rises) {
  grows_when_flat_and_shrinks_when_rtt_rises<vegas_limit>(4.0, false);
}

TEST(LimitAlgorithmsTest, every_algorithm_stays_within_min_and_max) {
  for (auto make : std::vector<std::function<std::unique_ptr<limit_algorithm>()>>{
           // min 10: above gradient2's own floor (2 x queue, where a gradient of 0.5 still
           // adds queue per update).
           [] { return std::make_unique<aimd_limit>(settings(20, 10, 40)); },
           [] { return std::make_unique<gradient2_limit>(settings(20, 10, 40)); },
           [] { return std::make_unique<vegas_limit>(settings(20, 10, 40)); }}) {
    auto a = make();
    EXPECT_EQ(feed(*a, 2000, 10.0), 40);
    // RTT that keeps rising, and drops: every algorithm's signal to shrink.
    double rtt = 10.0;
    for (int i = 0; i < 2000; ++i, rtt *= 1.01) {
      a->update({rtt, static_cast<int>(a->limit()), true});
    }
    EXPECT_EQ(a->limit(), 10);
    a->configure(settings(20, 12, 30));  // a reload with tighter bounds clamps the limit found
    EXPECT_EQ(a->limit(), 12);
    EXPECT_EQ(feed(*a, 2000, 10.0), 30);
  }
}

// Netflix concurrency-limits #137: when every request takes as long as the timeout (the
// dependency hangs and the client gives up at the same moment), there is no drop and no
// latency signal, and the limit climbs to max.
TEST(LimitAlgorithmsTest, aimd_climbs_to_max_when_every_rtt_equals_the_timeout) {
  aimd_limit a(settings());
  EXPECT_EQ(feed(a, 500, 5000.0), 200);
}

// Netflix concurrency-limits PR #134: under a steady overload the long RTT catches up with
// the short one, the gradient returns to 1, and the limit creeps up by `queue` per sample
// although nothing got better.
TEST(LimitAlgorithmsTest, gradient2_creeps_up_under_steady_overload) {
  gradient2_limit a(settings(50));
  feed(a, 600, 10.0);
  feed(a, 30, 40.0);  // the overload begins: RTT × 4
  const double cut = a.limit();
  const double crept = feed(a, 3000, 40.0);  // and stays
  EXPECT_GT(a.long_rtt_ms(), 35.0);
  EXPECT_GT(crept, cut * 1.5) << "cut to " << cut << ", then crept to " << crept;
}

// Netflix concurrency-limits #165: the probe takes a loaded RTT for the no-load one, so
// under sustained load the floor drifts up and the limit stops shrinking.
TEST(LimitAlgorithmsTest, vegas_no_load_rtt_drifts_up_under_sustained_load) {
  vegas_limit a(settings(50, 2, 1000), 7);
  feed(a, 200, 10.0);
  EXPECT_EQ(a.no_load_rtt_ms(), 10.0);
  feed(a, 4000, 30.0);  // sustained: every probe re-measures under this load
  EXPECT_EQ(a.no_load_rtt_ms(), 30.0);
  const double drifted = a.limit();
  EXPECT_GT(drifted, 20) << "with the true floor (10 ms) it would sit at its minimum";
}

TEST(LimitAlgorithmsTest, the_factory_knows_each_name) {
  limiter_settings s = settings();
  for (const char* name : {"aimd", "gradient2", "vegas"}) {
    s.algorithm = name;
    EXPECT_NE(make_limit_algorithm(s), nullptr) << name;
  }
  s.algorithm = "none";
  EXPECT_EQ(make_limit_algorithm(s), nullptr);
}

TEST(LimitAlgorithmsTest, a_window_hands_its_algorithm_one_sample_of_its_samples) {
  using std::chrono::milliseconds;
  limiter_settings s = settings(10);
  s.window_ms = 100;
  s.window_samples = 3;
  windowed_limit w(s, std::make_unique<aimd_limit>(s));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  // Four samples within 100 ms, one of them dropped: the window is still open.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(w.update({10.0, 10, i == 1, t0 + milliseconds(10 * i)}), 10);
  }
  // 100 ms after its first sample, the window closes: one sample, dropped, one backoff (×0.9).
  EXPECT_EQ(w.update({10.0, 10, false, t0 + milliseconds(100)}), 9);
  // A new window: three samples and 100 ms, nothing dropped, in use: +1 once, not three times.
  w.update({10.0, 9, false, t0 + milliseconds(110)});
  w.update({10.0, 9, false, t0 + milliseconds(120)});
  EXPECT_EQ(w.update({10.0, 9, false, t0 + milliseconds(210)}), 10);
  // A window of 0 ms hands every sample through: +1 each.
  s.window_ms = 0;
  w.configure(s);
  w.update({10.0, 10, false, t0 + milliseconds(211)});
  EXPECT_EQ(w.update({10.0, 11, false, t0 + milliseconds(212)}), 12);
}

TEST(LimitAlgorithmsTest, the_factory_windows_what_it_makes) {
  limiter_settings s = settings(10);
  s.algorithm = "aimd";
  s.window_ms = 100;
  auto a = make_limit_algorithm(s);
  ASSERT_NE(a, nullptr);
  EXPECT_NE(dynamic_cast<windowed_limit*>(a.get()), nullptr);
  EXPECT_EQ(a->limit(), 10);
}

}  // namespace
}  // namespace stampede
