#pragma once
/// \file The table of settable keys (internal to config/): each key's place in `config`, its
/// kind and its bounds. config.cpp parses, overrides and shows values through it.

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace stampede::keys {

struct int_spec {
  int& (*ref)(config&);
  long min;
  long max;
};
struct double_spec {
  double& (*ref)(config&);
  double min;
  double max;
};
struct bool_spec {
  bool& (*ref)(config&);
};
struct string_spec {
  std::string& (*ref)(config&);
  bool secret;
  bool (*check)(std::string_view, std::string& why) = nullptr;  ///< null: any text
};
struct endpoint_spec {
  endpoint& (*ref)(config&);
};
struct mode_spec {};
/// One word of a fixed list.
struct choice_spec {
  std::string& (*ref)(config&);
  std::vector<std::string_view> choices;
};
using spec = std::variant<int_spec, double_spec, bool_spec, string_spec, endpoint_spec, mode_spec,
                          choice_spec>;

struct key_spec {
  std::string_view key;
  spec how;
};

/// Every key, in the shipped file's order.
const std::vector<key_spec>& specs();
/// The key's spec; null if there is no such key.
const key_spec* find(std::string_view key);
/// Whether `prefix` names a section: some key starts with "prefix.".
bool is_section(std::string_view prefix);

}  // namespace stampede::keys
