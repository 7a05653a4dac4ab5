#include "server/live.hpp"

#include <gtest/gtest.h>

#include "server/metrics.hpp"

namespace stampede {
namespace {

// A family as the cgroup reading adds it to what metrics::collect returns, in place of the one
// this test's own cgroup gave.
std::vector<prometheus::MetricFamily> with_gauge(std::vector<prometheus::MetricFamily> families,
                                                 const std::string& name, double value) {
  std::erase_if(families, [&](const prometheus::MetricFamily& f) { return f.name == name; });
  prometheus::ClientMetric m;
  m.gauge.value = value;
  families.push_back({name, "", prometheus::MetricType::Gauge, {m}});
  return families;
}

TEST(LiveTest, a_modes_own_gauge_is_sampled_under_the_key_its_policy_gave_it) {
  metrics m;
  live_history h(3);
  m.own_gauge("stampede_test_own", "a gauge a mode made", "own_key").Set(7);
  EXPECT_EQ(&m.own_gauge("stampede_test_own", "", ""), &m.own_gauge("stampede_test_own", "", ""))
      << "made once";
  h.record(m.collect(), 100.0, m.own_series());
  h.record(m.collect(), 101.0, m.own_series());
  EXPECT_NE(h.json_after(0).find("\"own_key\":7E0"), std::string::npos) << h.json_after(0);
  EXPECT_NE(m.serialize().find("stampede_test_own 7"), std::string::npos);
}

TEST(LiveTest, samples_hold_rates_quantiles_and_totals_and_are_bounded) {
  metrics m;
  live_history h(3);
  h.set_config_path("/etc/stampede.yaml");
  h.record(m.collect(), 100.0);  // the baseline: no sample yet
  EXPECT_EQ(h.json_after(0),
            "{\"interval_s\":1,\"started\":0E0,\"config\":\"/etc/stampede.yaml\",\"samples\":[]}");
  for (int i = 0; i < 10; ++i) m.count_request(mode_kind::bounded, handler_id::io, 200, 0.004);
  m.for_mode(mode_kind::bounded).rejection_for("queue_full").counted->Increment(4);
  h.record(with_gauge(with_gauge(m.collect(), "stampede_memory_limit_bytes", 1024.0),
                      "stampede_oom_kills_total", 3.0),
           102.0);
  auto json = h.json_after(0);
  EXPECT_NE(json.find("\"rps_2xx\":5E0"), std::string::npos) << json;  // 10 over 2 s
  EXPECT_NE(json.find("\"queue_full\":2E0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory_limit_bytes\":1.024E3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"oom_kills\":3E0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"requests\":1E1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"p50_ms\":"), std::string::npos);
  EXPECT_EQ(json.find("\"p50_ms\":null"), std::string::npos) << json;
  for (int i = 0; i < 5; ++i) h.record(m.collect(), 103.0 + i);
  auto kept = h.json_after(0);
  EXPECT_EQ(kept.find("\"seq\":3}"), std::string::npos);  // only the last three are kept
  EXPECT_NE(kept.find("\"seq\":4}"), std::string::npos);
  EXPECT_NE(kept.find("\"seq\":6}"), std::string::npos);
  EXPECT_EQ(h.json_after(5).find("\"seq\":5}"), std::string::npos);
  EXPECT_NE(h.json_after(5).find("\"seq\":6}"), std::string::npos);
}

}  // namespace
}  // namespace stampede
