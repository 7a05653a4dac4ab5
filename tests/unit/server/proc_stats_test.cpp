#include "server/proc_stats.hpp"

#include <gtest/gtest.h>

namespace stampede {
namespace {

// Recorded from a live process; the command name has a space and a parenthesis on purpose.
constexpr const char* stat_sample =
    "4242 (stam pede)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 17 0 "
    "1000 395120640 1772 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcStatsTest, parses_stat_fields) {
  auto s = parse_proc_stat(stat_sample, 100, 4096, 1700000000);
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 3.0);  // (250 + 50) ticks / 100
  EXPECT_EQ(s->threads, 17);
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1700000010.0);
  EXPECT_DOUBLE_EQ(s->virtual_bytes, 395120640.0);
  EXPECT_DOUBLE_EQ(s->resident_bytes, 1772.0 * 4096);
}

TEST(ProcStatsTest, rejects_truncated_stat) {
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2 3", 100, 4096, 0));
  EXPECT_FALSE(parse_proc_stat("garbage", 100, 4096, 0));
}

TEST(ProcStatsTest, parses_boot_time) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000);
  EXPECT_FALSE(parse_boot_time("cpu 1\n"));
}

TEST(ProcStatsTest, parses_max_open_files) {
  const char* limits =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max processes             95000                95000                processes \n"
      "Max open files            1024                 1048576              files     \n";
  EXPECT_EQ(parse_max_open_files(limits), 1024);
}

TEST(ProcStatsTest, reads_this_process) {
  auto s = read_proc_self();
  ASSERT_TRUE(s);
  EXPECT_GE(s->threads, 1);
  EXPECT_GT(s->resident_bytes, 0);
  EXPECT_GT(s->open_fds, 0);
}

}  // namespace
}  // namespace stampede
