#pragma once
/// \file The workloads: a request in, a response out, a stop token checked.
/// Handlers know nothing of sockets, threads or the execution mode; the mode reaches
/// them only through `fanout_runner` (how parallel fetches are had) and the stop token.

#include <chrono>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stampede {

/// The endpoints. `other` labels requests that matched none (404/405/400 on the path).
enum class handler_id { io, cpu, fanout, healthz, other };
inline constexpr int handler_count = 5;
std::string_view to_string(handler_id h);

/// Validated parameters of one request.
struct work_params {
  int ms = 0;             ///< /work/io, /work/cpu, /work/fanout: milliseconds per unit of work
  int n = 1;              ///< /work/fanout: number of fetches
  bool parallel = false;  ///< /work/fanout: fetch in parallel
};

/// What a handler answers. The front end turns it into HTTP.
struct response {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// \brief How a mode runs K simulated fetches at once for /work/fanout.
/// Thread-safety: run_parallel may be called from many threads at once.
class fanout_runner {
 public:
  virtual ~fanout_runner() = default;
  /// Performs `count` fetches of `each`, in parallel as the mode allows; returns how many
  /// completed before `stop` was requested.
  virtual int run_parallel(int count, std::chrono::milliseconds each, std::stop_token stop) = 0;
};

/// What a running handler may use besides its parameters.
struct work_context {
  std::stop_token stop;   ///< set when the work should give up (client left, shutdown)
  fanout_runner* fanout;  ///< the mode's way to run parallel fetches
  std::string_view mode;  ///< for the response body only
};

/// Simulated blocking I/O: holds the calling thread for `d`, returning early (false) if
/// `stop` is requested.
bool simulated_io(std::chrono::milliseconds d, const std::stop_token& stop);

/// CPU-bound work: spins until the calling thread has used `d` of CPU time, checking `stop`
/// at least every millisecond. Returns false if stopped early.
bool burn_cpu(std::chrono::milliseconds d, const std::stop_token& stop);

/// Runs the handler `h` with `p`. Never throws; a cancelled run answers "cancelled".
response run_handler(handler_id h, const work_params& p, const work_context& ctx);

/// A JSON error body: {"error": message, ...}.
response error_response(int status, std::string_view message);

}  // namespace stampede
