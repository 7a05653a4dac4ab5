#include "server/memory_cgroup.hpp"

#include <gtest/gtest.h>

namespace stampede {
namespace {

TEST(MemoryCgroupTest, unified_first_then_the_v1_memory_controller) {
  auto v2 = find_memory_cgroups("0::/user.slice/app.scope\n", "/sys/fs/cgroup");
  ASSERT_EQ(v2.size(), 1u);
  EXPECT_EQ(v2[0].limit_file(), "/sys/fs/cgroup/user.slice/app.scope/memory.max");
  EXPECT_EQ(v2[0].events_file(), "/sys/fs/cgroup/user.slice/app.scope/memory.events");
  auto v1 =
      find_memory_cgroups("12:pids:/x\n4:memory:/lab/run-1\n1:name=systemd:/y\n", "/sys/fs/cgroup");
  ASSERT_EQ(v1.size(), 1u);
  EXPECT_EQ(v1[0].limit_file(), "/sys/fs/cgroup/memory/lab/run-1/memory.limit_in_bytes");
  EXPECT_EQ(v1[0].events_file(), "/sys/fs/cgroup/memory/lab/run-1/memory.oom_control");
  // A hybrid host: an empty unified hierarchy and the memory controller on v1.
  auto hybrid = find_memory_cgroups("4:memory:/a/b\n1:cpu:/\n0::/\n", "/r");
  ASSERT_EQ(hybrid.size(), 2u);
  EXPECT_EQ(hybrid[0].limit_file(), "/r/memory.max");
  EXPECT_EQ(hybrid[1].limit_file(), "/r/memory/a/b/memory.limit_in_bytes");
  EXPECT_EQ(find_memory_cgroups("4:memory:/\n", "/r")[0].limit_file(),
            "/r/memory/memory.limit_in_bytes");
  EXPECT_TRUE(find_memory_cgroups("3:cpu,cpuacct:/z\n", "/r").empty());
  EXPECT_TRUE(find_memory_cgroups("garbage\n", "/r").empty());
}

TEST(MemoryCgroupTest, limit_values) {
  EXPECT_EQ(parse_memory_limit("max\n"), std::nullopt);
  EXPECT_EQ(parse_memory_limit("9223372036854771712\n"), std::nullopt);  // v1: no limit
  EXPECT_EQ(parse_memory_limit("201326592\n"), 201326592.0);
  EXPECT_EQ(parse_memory_limit(""), std::nullopt);
}

TEST(MemoryCgroupTest, oom_kills_from_either_version) {
  EXPECT_EQ(parse_oom_kills("low 0\nhigh 0\nmax 41\noom 3\noom_kill 3\noom_group_kill 0\n"), 3.0);
  EXPECT_EQ(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"), 7.0);
  EXPECT_EQ(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\n"), std::nullopt);  // old kernel
  EXPECT_EQ(parse_oom_kills(""), std::nullopt);
}

}  // namespace
}  // namespace stampede
