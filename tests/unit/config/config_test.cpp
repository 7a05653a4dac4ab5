#include "config/config.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <fstream>

namespace stampede {
namespace {

config_error error_of(std::string_view yaml, const std::vector<override_value>& o = {}) {
  try {
    parse_config(yaml, "test.yaml", o);
  } catch (const config_error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << yaml;
  return config_error("", "", "");
}

TEST(ConfigTest, empty_file_gives_defaults) {
  config c = parse_config("", "test.yaml");
  EXPECT_EQ(c.mode, mode_kind::bounded);
  EXPECT_EQ(c.main.listen.port, 8080);
  // The lesson's model: the pool sized to the downstream, a working set, a memory limit.
  EXPECT_EQ(c.bounded.workers, c.downstream.capacity);
  EXPECT_EQ(c.work.request_kb, 256);
  EXPECT_EQ(c.supervisor.memory_limit_mb, 192);
  EXPECT_EQ(c.source_of("bounded.workers"), "default");
}

TEST(ConfigTest, the_shipped_file_is_the_built_in_defaults) {
  // One model: the file and the defaults agree key by key (sources aside).
  std::string path = std::string(STAMPEDE_SOURCE_DIR) + "/config/stampede.yaml";
  auto shipped = to_json(load_config(path)).as_object();
  auto defaults = to_json(parse_config("", "(defaults)")).as_object();
  shipped.erase("sources");
  defaults.erase("sources");
  EXPECT_EQ(boost::json::serialize(shipped), boost::json::serialize(defaults));
}

TEST(ConfigTest, sources_name_file_line_variable_and_flag_and_masked_keys_are_listed) {
  config c =
      parse_config("mode: coroutine\nbounded:\n  workers: 3\n  queue_capacity: 5\n", "f.yaml",
                   {{"mode", "blocking", "env STAMPEDE_MODE"},
                    {"bounded.queue_capacity", "5", "flag --queue-capacity"},
                    {"bounded.queue_timeout_ms", "50", "flag --queue-timeout-ms"}});
  EXPECT_EQ(c.source_of("mode"), "env STAMPEDE_MODE");
  EXPECT_EQ(c.source_of("bounded.workers"), "f.yaml:3");
  EXPECT_EQ(c.source_of("bounded.queue_capacity"), "flag --queue-capacity");
  EXPECT_EQ(c.source_of("bounded.queue_timeout_ms"), "flag --queue-timeout-ms");
  EXPECT_EQ(c.source_of("labs.stock"), "default");
  // Only a key the file sets to another value is masked: not one it sets alike, nor one it
  // leaves out.
  ASSERT_EQ(c.masked.size(), 1u);
  EXPECT_EQ(c.masked[0].key, "mode");
  EXPECT_EQ(c.masked[0].file_value, "coroutine");
  EXPECT_EQ(c.masked[0].file_where, "f.yaml:1");
  EXPECT_EQ(c.masked[0].value, "blocking");
  EXPECT_EQ(c.masked[0].source, "env STAMPEDE_MODE");
  auto json = to_json(c);
  EXPECT_EQ(json.at("sources").at("mode"), "env STAMPEDE_MODE");
  EXPECT_EQ(json.at("sources").at("bounded.workers"), "f.yaml:3");
}

TEST(ConfigTest, shipped_config_is_valid_and_sets_every_key) {
  std::string path = std::string(STAMPEDE_SOURCE_DIR) + "/config/stampede.yaml";
  config c = load_config(path);
  EXPECT_EQ(c.mode, mode_kind::bounded);
  // Every key by its full path (section and name), not just its last part: "workers:" under
  // the wrong section must not count.
  YAML::Node root = YAML::LoadFile(path);
  for (const auto& key : config_keys()) {
    YAML::Node node = YAML::Clone(root);
    std::size_t from = 0;
    while (node.IsDefined() && from <= key.size()) {
      auto dot = key.find('.', from);
      auto part = key.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
      node = node.IsMap() ? node[part] : YAML::Node(YAML::NodeType::Undefined);
      from = dot == std::string::npos ? key.size() + 1 : dot + 1;
    }
    EXPECT_TRUE(node.IsDefined() && node.IsScalar()) << key << " is not in the shipped file";
  }
}

TEST(ConfigTest, parses_nested_values) {
  config c = parse_config(
      "mode: thread_per_request\nbounded:\n  workers: 9\n  cancel_on_disconnect: false\n"
      "main:\n  listen: '[::1]:0'\n",
      "t");
  EXPECT_EQ(c.mode, mode_kind::thread_per_request);
  EXPECT_EQ(c.bounded.workers, 9);
  EXPECT_FALSE(c.bounded.cancel_on_disconnect);
  EXPECT_EQ(c.main.listen.host, "::1");
  EXPECT_EQ(c.main.listen.port, 0);
}

TEST(ConfigTest, unknown_key_names_line_and_key) {
  auto e = error_of("mode: bounded\nbounded:\n  wrokers: 3\n");
  EXPECT_EQ(e.where(), "test.yaml:3");
  EXPECT_EQ(e.key(), "bounded.wrokers");
  EXPECT_NE(std::string(e.what()).find("unknown key"), std::string::npos);
}

TEST(ConfigTest, unknown_section_is_an_error) {
  EXPECT_EQ(error_of("nosuch:\n  a: 1\n").key(), "nosuch");
}

TEST(ConfigTest, bad_value_names_line_and_key) {
  auto e = error_of("mode: bounded\n\nbounded:\n  workers: -2\n");
  EXPECT_EQ(e.where(), "test.yaml:4");
  EXPECT_EQ(e.key(), "bounded.workers");
}

TEST(ConfigTest, bad_mode_is_an_error) {
  EXPECT_EQ(error_of("mode: turbo\n").key(), "mode");
}

TEST(ConfigTest, non_numeric_and_overflowing_ints_are_errors) {
  EXPECT_EQ(error_of("limits:\n  max_ms: 12abc\n").key(), "limits.max_ms");
  EXPECT_EQ(error_of("limits:\n  max_ms: 99999999999999999999\n").key(), "limits.max_ms");
}

TEST(ConfigTest, bad_bool_and_endpoint_are_errors) {
  EXPECT_EQ(error_of("bounded:\n  cancel_on_disconnect: maybe\n").key(),
            "bounded.cancel_on_disconnect");
  EXPECT_EQ(error_of("main:\n  listen: example.com:80\n").key(), "main.listen");
  EXPECT_EQ(error_of("main:\n  listen: 127.0.0.1:70000\n").key(), "main.listen");
}

TEST(ConfigTest, syntax_error_names_line) {
  auto e = error_of("mode: bounded\nbounded:\n  workers: [1, 2\n");
  EXPECT_EQ(e.where().rfind("test.yaml:", 0), 0u) << e.what();
  EXPECT_NE(std::string(e.what()).find("YAML"), std::string::npos);
}

TEST(ConfigTest, a_list_where_a_value_belongs_is_an_error) {
  EXPECT_EQ(error_of("bounded:\n  workers: [1, 2]\n").key(), "bounded.workers");
}

TEST(ConfigTest, a_section_given_a_value_is_an_error) {
  EXPECT_EQ(error_of("bounded: 3\n").key(), "bounded");
}

TEST(ConfigTest, overrides_apply_in_order_after_the_file) {
  config c = parse_config("bounded:\n  workers: 2\n", "t",
                          {{"bounded.workers", "5", "env STAMPEDE_BOUNDED_WORKERS"},
                           {"bounded.workers", "7", "flag --workers"}});
  EXPECT_EQ(c.bounded.workers, 7);
}

TEST(ConfigTest, bad_override_names_its_source) {
  auto e = error_of("", {{"bounded.workers", "zero", "flag --workers"}});
  EXPECT_EQ(e.where(), "flag --workers");
  EXPECT_EQ(e.key(), "bounded.workers");
}

TEST(ConfigTest, env_names_follow_the_keys) {
  EXPECT_EQ(env_name("bounded.queue_capacity"), "STAMPEDE_BOUNDED_QUEUE_CAPACITY");
  setenv("STAMPEDE_BOUNDED_QUEUE_CAPACITY", "11", 1);
  auto o = env_overrides();
  unsetenv("STAMPEDE_BOUNDED_QUEUE_CAPACITY");
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(parse_config("", "t", o).bounded.queue_capacity, 11);
}

TEST(ConfigTest, json_masks_the_token) {
  config c = parse_config("admin:\n  token: s3cret\n", "t");
  auto text = boost::json::serialize(to_json(c));
  EXPECT_EQ(text.find("s3cret"), std::string::npos);
  EXPECT_NE(text.find("\"bounded\":{"), std::string::npos);
}

TEST(ConfigTest, admin_binds_loopback_by_default) {
  config c = parse_config("", "t");
  EXPECT_EQ(c.admin.listen.host, "127.0.0.1");
  EXPECT_TRUE(c.admin.token.empty());
}

TEST(ConfigTest, non_loopback_admin_needs_a_token) {
  EXPECT_EQ(error_of("admin:\n  listen: 0.0.0.0:9000\n").key(), "admin.token");
  EXPECT_NO_THROW(parse_config("admin:\n  listen: 0.0.0.0:9000\n  token: x\n", "t"));
}

TEST(ConfigTest, missing_file_is_an_error_naming_it) {
  try {
    load_config("/nonexistent/stampede.yaml");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_EQ(e.where(), "/nonexistent/stampede.yaml");
  }
}

TEST(ConfigTest, limiter_and_queue_keys_parse_and_bad_ones_name_line_key_and_choices) {
  config c = parse_config(
      "limiter:\n  algorithm: vegas\n  vegas_smoothing: 0.5\n  initial: 8\n"
      "bounded:\n  queue: codel\n",
      "t");
  EXPECT_EQ(c.limiter.algorithm, "vegas");
  EXPECT_DOUBLE_EQ(c.limiter.vegas_smoothing, 0.5);
  EXPECT_EQ(c.bounded.queue, "codel");
  EXPECT_DOUBLE_EQ(to_json(c).at("limiter").at("vegas_smoothing").as_double(), 0.5);

  auto e = error_of("limiter:\n  algorithm: pid\n");
  EXPECT_EQ(e.where(), "test.yaml:2");
  EXPECT_EQ(e.key(), "limiter.algorithm");
  EXPECT_NE(std::string(e.what()).find("none, aimd, gradient2, vegas"), std::string::npos);
  e = error_of("limiter:\n  gradient2_smoothing: 1.5\n");
  EXPECT_EQ(e.key(), "limiter.gradient2_smoothing");
  EXPECT_NE(std::string(e.what()).find("from 0.01 to 1"), std::string::npos) << e.what();
  EXPECT_EQ(error_of("limiter:\n  aimd_backoff_ratio: x\n").key(), "limiter.aimd_backoff_ratio");
  EXPECT_EQ(error_of("bounded:\n  queue: lifo\n").key(), "bounded.queue");
  EXPECT_EQ(error_of("limiter:\n  min: 50\n  max: 10\n").key(), "limiter.min");
  EXPECT_EQ(error_of("limiter:\n  initial: 1\n").key(), "limiter.initial");  // below min 2
  EXPECT_EQ(error_of("limiter:\n  vegas_alpha: 7\n").key(), "limiter.vegas_alpha");
}

TEST(ConfigTest, restart_keys_are_reported) {
  config a, b;
  b.main.io_threads = 3;
  b.bounded.workers = 9;
  EXPECT_EQ(restart_keys_changed(a, b), std::vector<std::string>{"main.io_threads"});
}

}  // namespace
}  // namespace stampede
