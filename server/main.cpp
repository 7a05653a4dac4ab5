// stampede: parse options, load the config, run the server. Nothing else lives here.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <iostream>

#include "server/options.hpp"
#include "server/server.hpp"

int main(int argc, char** argv) {
  using namespace stampede;
  spdlog::set_default_logger(spdlog::stderr_color_mt("stampede"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  auto parsed = parse_options(argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& opts = std::get<options>(parsed);

  auto overrides = env_overrides();
  overrides.insert(overrides.end(), opts.flags.begin(), opts.flags.end());

  if (opts.check_config) {
    try {
      config c = load_config(*opts.check_config, overrides);
      std::cout << *opts.check_config << ": OK (mode " << to_string(c.mode) << ")\n";
      return 0;
    } catch (const config_error& e) {
      std::cerr << "stampede: bad config: " << e.what() << "\n";
      return 2;
    }
  }

  // The default file is optional; a file named with --config must exist.
  std::string path = opts.config_path;
  if (!opts.config_path_given && !std::filesystem::exists(path)) {
    if (!opts.print_config) spdlog::warn("{} not found: running with built-in defaults", path);
    path.clear();
  }
  config c;
  try {
    c = path.empty() ? parse_config("", "(defaults)", overrides) : load_config(path, overrides);
  } catch (const config_error& e) {
    std::cerr << "stampede: bad config: " << e.what() << "\n";
    return 2;
  }
  if (opts.print_config) {
    std::cout << boost::json::serialize(to_json(c)) << "\n";
    return 0;
  }
  return server(std::move(c), std::move(path), std::move(overrides)).run();
}
