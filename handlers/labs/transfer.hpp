#pragma once
/// \file Lab 4, the lock-order deadlock: GET /lab/transfer?from=X&to=Y&ms=N&variant=
/// unordered|ordered moves 1 between accounts a to d under the two accounts' locks. unordered
/// locks `from`, holds it N ms, then locks `to`; ordered takes the same two locks in one fixed
/// order. The detector keeps the locks' wait-for graph and reports a cycle that has lasted.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "handlers/labs/lab_wait.hpp"
#include "handlers/labs/variants.hpp"

namespace stampede {

/// \brief The four accounts, their locks and the wait-for graph. Thread-safety: every member
/// may be called from any thread.
class transfer_lab {
 public:
  enum variant { unordered, ordered };
  static constexpr int variant_count = 2;
  static constexpr const auto& names = transfer_variants;
  static constexpr int accounts = 4;
  static constexpr std::int64_t opening_balance = 1000;

  explicit transfer_lab(wait_list& waits) : waits_(waits) { reset(); }
  job<response> run(int v, int from, int to, int ms, const work_context& ctx);
  void reset();

  /// The detector, called periodically: a cycle in the wait-for graph that has lasted
  /// `detect` is reported once (a log line in `found`, counted), and with `break_it` one
  /// request of it is failed as the victim. Returns the log lines.
  std::vector<std::string> watch(std::chrono::milliseconds detect, bool break_it);

  std::int64_t deadlocks(int v) const { return deadlocks_[v].load(); }
  /// Accounts, their holders and waiters, and the last detection, as JSON.
  std::string to_json() const;

 private:
  using clock = std::chrono::steady_clock;
  struct request {
    std::uint64_t id;
    int variant;
    int holds[2] = {-1, -1};  ///< accounts whose lock it holds
    int waits_for = -1;       ///< the account whose lock it waits for
    clock::time_point waiting_since{};
    lab_wait* wait = nullptr;  ///< while waiting
  };
  struct account {
    request* owner = nullptr;
    std::deque<request*> line;  ///< waiting for its lock, oldest first
    std::int64_t balance = opening_balance;
  };
  job<wait_end> lock(request& r, int a, const work_context& ctx);
  void unlock(request& r, int a);
  void unlock_all(request& r);

  wait_list& waits_;
  mutable std::mutex mutex_;  ///< guards everything below
  std::array<account, accounts> accounts_{};
  std::uint64_t next_id_ = 1;
  std::vector<std::vector<std::uint64_t>> reported_;  ///< cycles reported, still standing
  std::string last_detection_;                        ///< JSON, or empty
  std::array<std::atomic<std::int64_t>, variant_count> deadlocks_{};
};

}  // namespace stampede
