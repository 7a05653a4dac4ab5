#pragma once
/// \file The labs' names and their variants' names, unsafe variant first: what the router
/// accepts and the labs answer with. No coroutines (the fuzzed router includes it).

#include <span>
#include <string_view>

#include "handlers/work.hpp"

namespace stampede {

inline constexpr std::string_view counter_variants[] = {"racy", "mutex", "atomic", "owner"};
inline constexpr std::string_view reserve_variants[] = {"racy", "mutex", "atomic"};
inline constexpr std::string_view leak_variants[] = {"leaky", "fixed"};
inline constexpr std::string_view transfer_variants[] = {"unordered", "ordered"};
inline constexpr std::string_view nested_variants[] = {"nested", "inline"};
inline constexpr std::string_view lock_variants[] = {"global", "narrow"};
// concurrent is the naive one (K children on one thread); sequential is the yardstick.
inline constexpr std::string_view cpu_fanout_variants[] = {"concurrent", "parallel", "sequential"};
inline constexpr std::string_view cache_variants[] = {"unbounded", "bounded"};

/// The variants of `lab` (index = work_params::variant).
inline std::span<const std::string_view> lab_variants(lab_kind lab) {
  switch (lab) {
    case lab_kind::counter:
      return counter_variants;
    case lab_kind::reserve:
      return reserve_variants;
    case lab_kind::leak:
      return leak_variants;
    case lab_kind::transfer:
      return transfer_variants;
    case lab_kind::nested:
      return nested_variants;
    case lab_kind::lock:
      return lock_variants;
    case lab_kind::cpu_fanout:
      return cpu_fanout_variants;
    case lab_kind::cache:
      return cache_variants;
  }
  return {};
}

inline std::string_view to_string(lab_kind lab) {
  switch (lab) {
    case lab_kind::counter:
      return "counter";
    case lab_kind::reserve:
      return "reserve";
    case lab_kind::leak:
      return "leak";
    case lab_kind::transfer:
      return "transfer";
    case lab_kind::nested:
      return "nested";
    case lab_kind::lock:
      return "lock";
    case lab_kind::cpu_fanout:
      return "cpu_fanout";
    case lab_kind::cache:
      return "cache";
  }
  return "unknown";
}

}  // namespace stampede
