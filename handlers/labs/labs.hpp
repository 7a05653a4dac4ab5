#pragma once
/// \file The failure labs, shared by the whole server as a cache or a map would be: the
/// labs' state, their settings (labs.*), the watchdog that runs their detectors, and the reset.
/// Each lab is a file pair beside this one, its unsafe and fixed variants side by side.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "handlers/labs/cache.hpp"
#include "handlers/labs/counter.hpp"
#include "handlers/labs/cpu_fanout.hpp"
#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/leak.hpp"
#include "handlers/labs/lock.hpp"
#include "handlers/labs/nested.hpp"
#include "handlers/labs/reserve.hpp"
#include "handlers/labs/transfer.hpp"

namespace stampede {

/// The labs.* settings; all apply live (a new stock at the next reset).
struct lab_settings {
  int stock = 100;
  int wait_ms = 50;
  int max_leaked = 2000;
  int deadlock_detect_ms = 500;
  bool deadlock_break = false;
  cache_lab::limits cache;
};

/// \brief All the labs. Thread-safety: every member may be called from any thread.
class labs {
 public:
  explicit labs(const lab_settings& s = {});
  labs(const labs&) = delete;
  labs& operator=(const labs&) = delete;

  void configure(const lab_settings& s);
  lab_settings settings() const;

  /// One /lab/* request (p.lab, p.variant and its parameters already validated).
  job<response> run(const work_params& p, const work_context& ctx);

  /// The detectors, run every `tick` or so by the server; returns their log lines.
  std::vector<std::string> watch();

  /// Frees every stuck and leaked request and helper, resets every lab's state; the JSON
  /// says what it freed.
  std::string reset();
  /// Every lab's state as JSON, with each leaked helper and its age.
  std::string to_json() const;

  /// What the metrics export, read at scrape time.
  struct figures {
    std::array<counter_lab::figures, counter_lab::variant_count> counter;
    std::array<reserve_lab::figures, reserve_lab::variant_count> reserve;
    std::array<int, leak_lab::variant_count> leaked;
    std::array<std::int64_t, transfer_lab::variant_count> deadlocks;
    std::int64_t starved = 0;
    std::array<lock_lab::figures, lock_lab::variant_count> lock;
    std::array<cpu_fanout_lab::figures, cpu_fanout_lab::variant_count> cpu_fanout;
    std::array<cache_lab::figures, cache_lab::variant_count> cache;
    int stuck = 0;  ///< lab waits under way now (locks, hand-overs, children)
  };
  figures read();

 private:
  mutable std::mutex settings_mutex_;
  lab_settings settings_;
  wait_list waits_;
  counter_lab counter_;
  reserve_lab reserve_;
  leak_lab leak_;
  transfer_lab transfer_;
  nested_lab nested_;
  lock_lab lock_;
  cpu_fanout_lab cpu_fanout_;
  cache_lab cache_;
};

}  // namespace stampede
