#include "server/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace stampede {
namespace {

TEST(ShardedMetricsTest, histogram_buckets_are_less_or_equal_and_cumulative) {
  sharded_histogram h({0.1, 0.5, 1.0});
  for (double v : {0.05, 0.1, 0.2, 0.5, 0.7, 2.0}) h.Observe(v);
  auto m = h.Collect().histogram;
  ASSERT_EQ(m.bucket.size(), 4u);
  EXPECT_EQ(m.bucket[0].cumulative_count, 2u);  // 0.05, 0.1 (le 0.1)
  EXPECT_EQ(m.bucket[1].cumulative_count, 4u);  // + 0.2, 0.5
  EXPECT_EQ(m.bucket[2].cumulative_count, 5u);  // + 0.7
  EXPECT_EQ(m.bucket[3].cumulative_count, 6u);  // + 2.0 (+Inf)
  EXPECT_TRUE(std::isinf(m.bucket[3].upper_bound));
  EXPECT_EQ(m.sample_count, 6u);
  EXPECT_NEAR(m.sample_sum, 3.55, 1e-9);
}

TEST(ShardedMetricsTest, concurrent_records_are_all_counted) {
  sharded_counter c;
  sharded_histogram h({0.001});
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Increment();
        h.Observe(0.0005);
      }
    });
  }
  threads.clear();
  EXPECT_EQ(c.Value(), 80000);
  EXPECT_EQ(h.Collect().histogram.sample_count, 80000u);
  EXPECT_NEAR(h.Collect().histogram.sample_sum, 40.0, 1e-6);
}

TEST(ShardedMetricsTest, families_export_names_labels_and_types) {
  sharded_families f;
  f.counter("x_total", "help x", {{"mode", "a"}}).Increment();
  f.counter("x_total", "help x", {{"mode", "b"}});
  f.histogram("y_seconds", "help y", {}, {1.0}).Observe(0.5);
  std::vector<prometheus::MetricFamily> out;
  f.collect(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "x_total");
  EXPECT_EQ(out[0].type, prometheus::MetricType::Counter);
  ASSERT_EQ(out[0].metric.size(), 2u);
  EXPECT_EQ(out[0].metric[0].label[0].value, "a");
  EXPECT_EQ(out[0].metric[0].counter.value, 1);
  EXPECT_EQ(out[0].metric[1].counter.value, 0);
  EXPECT_EQ(out[1].type, prometheus::MetricType::Histogram);
  EXPECT_EQ(out[1].metric[0].histogram.sample_count, 1u);
}

}  // namespace
}  // namespace stampede
