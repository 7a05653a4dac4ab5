#include "server/live.hpp"

#include <gtest/gtest.h>

#include "server/metrics.hpp"

namespace stampede {
namespace {

TEST(LiveTest, memory_limit_path_prefers_the_unified_hierarchy) {
  EXPECT_EQ(memory_limit_path("0::/user.slice/app.scope\n", "/sys/fs/cgroup"),
            "/sys/fs/cgroup/user.slice/app.scope/memory.max");
  EXPECT_EQ(
      memory_limit_path("12:pids:/x\n4:memory:/lab/run-1\n1:name=systemd:/y\n", "/sys/fs/cgroup"),
      "/sys/fs/cgroup/memory/lab/run-1/memory.limit_in_bytes");
  EXPECT_EQ(memory_limit_path("0::/\n", "/r"), "/r/memory.max");
  EXPECT_EQ(memory_limit_path("3:cpu,cpuacct:/z\n", "/r"), "");
}

TEST(LiveTest, memory_limit_values) {
  EXPECT_EQ(parse_memory_limit("max\n"), std::nullopt);
  EXPECT_EQ(parse_memory_limit("9223372036854771712\n"), std::nullopt);  // v1: no limit
  EXPECT_EQ(parse_memory_limit("201326592\n"), 201326592.0);
  EXPECT_EQ(parse_memory_limit(""), std::nullopt);
}

TEST(LiveTest, samples_hold_rates_quantiles_and_totals_and_are_bounded) {
  metrics m;
  live_history h(3);
  h.set_config_path("/etc/stampede.yaml");
  h.record(m.collect(), 100.0, std::nullopt);  // the baseline: no sample yet
  EXPECT_EQ(h.json_after(0),
            "{\"interval_s\":1,\"started\":0E0,\"config\":\"/etc/stampede.yaml\",\"samples\":[]}");
  for (int i = 0; i < 10; ++i) m.count_request(mode_kind::bounded, handler_id::io, 200, 0.004);
  m.for_mode(mode_kind::bounded).rejected[0]->Increment(4);
  h.record(m.collect(), 102.0, 1024.0);
  auto json = h.json_after(0);
  EXPECT_NE(json.find("\"rps_2xx\":5E0"), std::string::npos) << json;  // 10 over 2 s
  EXPECT_NE(json.find("\"queue_full\":2E0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory_limit_bytes\":1.024E3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"requests\":1E1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"p50_ms\":"), std::string::npos);
  EXPECT_EQ(json.find("\"p50_ms\":null"), std::string::npos) << json;
  for (int i = 0; i < 5; ++i) h.record(m.collect(), 103.0 + i, std::nullopt);
  auto kept = h.json_after(0);
  EXPECT_EQ(kept.find("\"seq\":3}"), std::string::npos);  // only the last three are kept
  EXPECT_NE(kept.find("\"seq\":4}"), std::string::npos);
  EXPECT_NE(kept.find("\"seq\":6}"), std::string::npos);
  EXPECT_EQ(h.json_after(5).find("\"seq\":5}"), std::string::npos);
  EXPECT_NE(h.json_after(5).find("\"seq\":6}"), std::string::npos);
}

}  // namespace
}  // namespace stampede
