// libFuzzer target: bytes → the YAML config loader. Anything but a config or a config_error
// naming where the problem is (a crash, another exception, a hang) is a bug.
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto c = stampede::parse_config(text, "fuzz.yaml");
    if (c.bounded.workers < 1 || c.thread_per_request.max_threads < 1) std::abort();
    (void)boost::json::serialize(stampede::to_json(c));
  } catch (const stampede::config_error& e) {
    if (e.where().rfind("fuzz.yaml", 0) != 0) std::abort();
  }
  return 0;
}
