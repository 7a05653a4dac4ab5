#pragma once
/// \file Lab 7, concurrency is not parallelism: GET /lab/cpu_fanout?n=K&ms=N&variant=
/// concurrent|parallel|sequential splits the request into K CPU-bound children of N ms.
/// sequential runs them one after another; concurrent interleaves them in 1 ms turns on the
/// request's one thread, as an event loop runs tasks; parallel hands them to the mode, to run
/// on as many cores as the mode gives it. Only parallel can beat K·N, and only by the cores.

#include <array>
#include <atomic>
#include <cstdint>

#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/variants.hpp"

namespace stampede {

/// \brief Runs the children and sums their times. Thread-safety: every member may be called
/// from any thread.
class cpu_fanout_lab {
 public:
  enum variant { concurrent, parallel, sequential };
  static constexpr int variant_count = 3;
  static constexpr const auto& names = cpu_fanout_variants;

  explicit cpu_fanout_lab(wait_list& waits) : waits_(waits) {}
  job<response> run(int v, int k, int ms, const work_context& ctx);
  void reset();

  struct figures {
    std::int64_t runs = 0;
    double wall_seconds = 0;  ///< the requests' wall time, summed
    double work_seconds = 0;  ///< K·N, summed: work / wall is the speed-up
  };
  figures read(int v) const;

 private:
  wait_list& waits_;
  std::array<std::atomic<std::int64_t>, variant_count> runs_{};
  std::array<std::atomic<std::int64_t>, variant_count> wall_us_{};
  std::array<std::atomic<std::int64_t>, variant_count> work_us_{};
};

}  // namespace stampede
