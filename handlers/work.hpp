#pragma once
/// \file The workloads: a request in, a response out, a stop token checked.
/// Handlers know nothing of sockets, threads or the execution mode; the mode reaches
/// them only through `fanout_runner` (how parallel fetches are had) and the stop token.

#include <chrono>
#include <cstdint>
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
  int kb = -1;            ///< /work/*: working set in KiB held while the request runs;
                          ///< -1 until the front end applies work.request_kb
};

/// What a handler answers. The front end turns it into HTTP.
struct response {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class downstream;

/// \brief How a mode runs K simulated fetches at once for /work/fanout.
/// Thread-safety: run_parallel may be called from many threads at once.
class fanout_runner {
 public:
  virtual ~fanout_runner() = default;
  /// Performs `count` calls of `each` to `ds` (null: a dependency without limit), in
  /// parallel as the mode allows; returns how many completed before `stop` was requested.
  virtual int run_parallel(int count, std::chrono::milliseconds each, downstream* ds,
                           std::stop_token stop) = 0;
};

/// What a running handler may use besides its parameters.
struct work_context {
  std::stop_token stop;              ///< set when the work should give up (client left, shutdown)
  fanout_runner* fanout;             ///< the mode's way to run parallel fetches
  std::string_view mode;             ///< for the response body only
  downstream* dependency = nullptr;  ///< what /work/io and fetches call; null: unlimited
};

/// \brief Memory a request holds while it runs: `kb` KiB, every page written, as a real
/// request holds its buffers and decoded payload. Counted in request_memory_bytes() while
/// alive. Throws std::bad_alloc if the memory cannot be had.
class working_set {
 public:
  explicit working_set(int kb);
  ~working_set();
  working_set(const working_set&) = delete;
  working_set& operator=(const working_set&) = delete;

 private:
  char* data_;
  std::size_t bytes_;
};

/// Bytes held by live working sets in this process.
std::int64_t request_memory_bytes();
/// Requests answered 503 no_memory because their working set could not be allocated.
std::int64_t request_memory_failures();

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
