#pragma once
/// \file Lab 2, check-then-act: GET /lab/reserve?variant=racy|mutex|atomic sells one seat of a
/// stock of labs.stock, if one is left. atomic is the race-free bug: its check and its act are
/// each atomic, so ThreadSanitizer has nothing to report, and it oversells like racy.

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "handlers/labs/variants.hpp"
#include "handlers/work.hpp"

namespace stampede {

/// \brief Each variant's stock and sales, shared by the whole server. Thread-safety: run()
/// from any thread; racy's stock is a data race on purpose, mutex's and atomic's are not.
class reserve_lab {
 public:
  enum variant { racy, mutex, atomic };
  static constexpr int variant_count = 3;
  static constexpr const auto& names = reserve_variants;

  explicit reserve_lab(int stock) { reset(stock); }
  /// Sells one seat of variant `v`: 200 {"sold":true|false}.
  job<response> run(int v, const work_context& ctx);
  void reset(int stock);

  struct figures {
    std::int64_t stock = 0;    ///< seats left; below 0: oversold
    std::int64_t sold = 0;     ///< counted exactly
    std::int64_t initial = 0;  ///< the stock at the last reset
  };
  figures read(int v);

 private:
  std::int64_t racy_stock_ = 0;  ///< checked, then taken, with no synchronisation
  std::mutex mutex_;
  std::int64_t mutex_stock_ = 0;               ///< under mutex_
  std::atomic<std::int64_t> atomic_stock_{0};  ///< a load, then a fetch_sub: two steps
  std::array<std::atomic<std::int64_t>, variant_count> sold_{};
  std::atomic<std::int64_t> initial_{0};
};

}  // namespace stampede
