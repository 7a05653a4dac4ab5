#pragma once
/// \file Maps a request line to a handler and validated parameters. Knows nothing of Asio.

#include <optional>
#include <string_view>

#include "handlers/work.hpp"

namespace stampede {

/// Bounds on what a request may ask for (config: limits.*).
struct work_limits {
  int max_ms = 60000;
  int max_fanout = 100;
  int max_kb = 4096;
};

/// Why a request cannot be routed: 400 bad parameter, 404 unknown path, 405 wrong method.
/// The front end answers it with error_response (which adds the mode) and `allow`, if any.
struct route_error {
  int status = 400;
  std::string message;
  std::string_view reason;  ///< bad_parameter, not_found or method_not_allowed
  std::string_view allow;   ///< 405: the Allow header's value
};

/// A routed request: either a handler with its parameters, or an answer to send at once.
struct route_result {
  handler_id handler = handler_id::other;
  work_params params;
  std::optional<route_error> error;
};

/// The header in which a caller sends the time left before its deadline, in milliseconds.
inline constexpr std::string_view deadline_header = "X-Stampede-Deadline-Ms";

/// Applies a deadline header's value (whole milliseconds, 0 to limits.max_ms) to `p`, as a
/// deadline that far from `now`. A bad value is a 400 (bad_parameter).
std::optional<route_error> apply_deadline(std::string_view value, int max_ms,
                                          std::chrono::steady_clock::time_point now,
                                          work_params& p);

/// The header in which a caller says how much its request matters (criticality's names).
inline constexpr std::string_view criticality_header = "X-Stampede-Criticality";

/// Applies a criticality header's value (one of the four names, in any case) to `p`. Anything
/// else is a 400 (bad_parameter).
std::optional<route_error> apply_criticality(std::string_view value, work_params& p);

/// Routes `method` and `target` (origin-form, as on the request line). Strict: unknown,
/// repeated, empty, negative, overflowing or non-numeric parameters are 400.
route_result route(std::string_view method, std::string_view target, const work_limits& limits);

}  // namespace stampede
