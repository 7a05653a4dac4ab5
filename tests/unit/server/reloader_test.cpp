#include "server/reloader.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "server_rig.hpp"

namespace stampede {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int next_id() {
  static int n = 0;
  return ++n;
}

fs::path dir_for(int id) {
  return fs::temp_directory_path() /
         ("stampede-reloader-" + std::to_string(::getpid()) + "-" + std::to_string(id));
}

/// Written aside and renamed into place, as an editor saves.
void write_file(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  {
    std::ofstream out(file.string() + ".new");
    out << text;
  }
  fs::rename(file.string() + ".new", file);
}

config written(const fs::path& file, const std::string& text) {
  write_file(file, text);
  return load_config(file.string(), {});
}

/// A running server's parts as the reloader sees them, with its config in a file of its own,
/// and what the reloader logs.
struct rig : testing::server_rig {
  fs::path dir;
  fs::path file;
  reloader reload;
  std::ostringstream log;
  std::shared_ptr<spdlog::logger> before = spdlog::default_logger();

  explicit rig(const std::string& text, int id = next_id())
      : server_rig(written(dir_for(id) / "stampede.yaml", text)),
        dir(dir_for(id)),
        file(dir / "stampede.yaml"),
        reload(file.string(), {}, fe, stats, dependency, nullptr, lab) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  }
  ~rig() {
    spdlog::set_default_logger(before);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const std::string& text) { write_file(file, text); }
};

TEST(ReloaderTest, a_good_file_is_applied_and_counted) {
  rig r("mode: bounded\ndownstream:\n  capacity: 32\n");
  const auto gen = r.fe.generation.load();
  r.write("mode: bounded\ndownstream:\n  capacity: 8\nbounded:\n  workers: 3\n");
  r.reload.reload("test");
  EXPECT_EQ(r.fe.cfg.load()->bounded.workers, 3);
  EXPECT_EQ(r.dependency.stats().capacity, 8) << "applied to the dependency too";
  EXPECT_EQ(r.stats.config_reloads(true).Value(), 1);
  EXPECT_GT(r.fe.generation.load(), gen) << "sessions pick it up at their next request";
  EXPECT_NE(r.log.str().find("config reloaded (test)"), std::string::npos) << r.log.str();
}

TEST(ReloaderTest, a_bad_file_keeps_the_running_config_and_names_file_line_and_key) {
  rig r("mode: bounded\nbounded:\n  workers: 4\n");
  r.write("mode: bounded\nbounded:\n  workers: -2\n");
  r.reload.reload("test");
  EXPECT_EQ(r.fe.cfg.load()->bounded.workers, 4);
  EXPECT_EQ(r.stats.config_reloads(false).Value(), 1);
  EXPECT_EQ(r.stats.config_reloads(true).Value(), 0);
  const auto said = r.log.str();
  EXPECT_NE(said.find("keeping the running config"), std::string::npos) << said;
  EXPECT_NE(said.find("stampede.yaml"), std::string::npos) << said;
  EXPECT_NE(said.find("bounded.workers"), std::string::npos) << said;
  EXPECT_NE(said.find(":3"), std::string::npos) << "the line: " << said;
}

TEST(ReloaderTest, a_mode_switch_swaps_the_policy_and_keeps_the_old_one_for_shutdown) {
  rig r("mode: bounded\n");
  auto old = r.policy.load();
  r.write("mode: coroutine\n");
  r.reload.reload("test");
  EXPECT_EQ(r.policy.load()->mode(), mode_kind::coroutine);
  EXPECT_EQ(r.stats.for_mode(mode_kind::coroutine).info->Value(), 1);
  EXPECT_EQ(r.stats.for_mode(mode_kind::bounded).info->Value(), 0);
  // Held by a request still running under it: shutdown must be able to stop it.
  ASSERT_EQ(r.reload.retired().size(), 1u);
  EXPECT_EQ(r.reload.retired()[0], old);
  old.reset();
  EXPECT_TRUE(r.reload.retired().empty()) << "once nothing runs under it, it is gone";
}

TEST(ReloaderTest, restart_only_keys_keep_their_running_value) {
  rig r("mode: bounded\nmain:\n  io_threads: 1\n");
  r.write("mode: bounded\nmain:\n  io_threads: 4\n");
  r.reload.reload("test");
  EXPECT_EQ(r.fe.cfg.load()->main.io_threads, 1);
  EXPECT_NE(r.log.str().find("main.io_threads changes only on restart"), std::string::npos)
      << r.log.str();
}

TEST(ReloaderTest, the_watch_reloads_a_changed_file_within_its_poll) {
  rig r("mode: bounded\nreload:\n  poll_ms: 50\n");
  boost::asio::io_context io;
  boost::asio::co_spawn(io, r.reload.watch_file(io.get_executor(), stamp_of(r.file.string())),
                        boost::asio::detached);
  std::jthread runner([&] { io.run_for(3s); });
  std::this_thread::sleep_for(150ms);  // three polls
  EXPECT_EQ(r.stats.config_reloads(true).Value(), 0) << "unchanged: not reloaded";
  r.write("mode: bounded\nreload:\n  poll_ms: 50\nbounded:\n  workers: 5\n");
  for (int i = 0; i < 200 && r.stats.config_reloads(true).Value() < 1; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(r.fe.cfg.load()->bounded.workers, 5);
  EXPECT_EQ(r.stats.config_reloads(true).Value(), 1);
  io.stop();
}

TEST(ReloaderTest, without_a_file_there_is_nothing_to_reload) {
  testing::server_rig r;
  reloader reload("", {}, r.fe, r.stats, r.dependency, nullptr, r.lab);
  reload.reload("test");
  EXPECT_EQ(r.stats.config_reloads(true).Value(), 0);
  EXPECT_EQ(r.stats.config_reloads(false).Value(), 0);
}

}  // namespace
}  // namespace stampede
