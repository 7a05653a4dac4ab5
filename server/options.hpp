#pragma once
/// \file Command-line options (CLI11). Precedence: flag > environment > file > default.

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace stampede {

/// What the command line asked for.
struct options {
  std::string config_path = "config/stampede.yaml";
  bool config_path_given = false;
  std::optional<std::string> check_config;  ///< --check-config FILE: validate and exit
  bool print_config = false;  ///< --print-config: print the effective config as JSON and exit
  std::vector<override_value> flags;  ///< flags that set config keys
};

/// Parses argv. Returns an exit code instead when the process should stop (--help, errors).
std::variant<options, int> parse_options(int argc, char** argv);

}  // namespace stampede
