#include "handlers/labs/reserve.hpp"

#include <chrono>
#include <string>

namespace stampede {

namespace {
/// The interleaving point: the round trip between a check and its act (a query, then an
/// update), long enough that requests arriving together all see the same last seats.
constexpr std::chrono::milliseconds round_trip(5);
}  // namespace

job<response> reserve_lab::run(int v, const work_context& ctx) {
  bool sold = false;
  if (v == racy) {
    if (racy_stock_ > 0) {                 // check: a seat is left…
      co_await ctx.sleep_for(round_trip);  // …others check the same last seat here…
      racy_stock_ = racy_stock_ - 1;       // …and every one of them takes it
      sold = true;
    }
  } else if (v == atomic) {
    // Every access synchronised, so no data race: each step is atomic, the pair is not.
    if (atomic_stock_.load() > 0) {
      co_await ctx.sleep_for(round_trip);
      atomic_stock_.fetch_sub(1);
      sold = true;
    }
  } else {
    {
      std::lock_guard lock(mutex_);  // check and take in one step
      if (mutex_stock_ > 0) {
        mutex_stock_ = mutex_stock_ - 1;
        sold = true;
      }
    }
    co_await ctx.sleep_for(round_trip);  // the same round trip, after the one step
  }
  if (sold) sold_[v].fetch_add(1);
  response r;
  r.body = std::string("{\"lab\":\"reserve\",\"variant\":\"") + std::string(names[v]) +
           "\",\"mode\":\"" + std::string(ctx.mode) + "\",\"sold\":" + (sold ? "true" : "false") +
           "}";
  co_return r;
}

reserve_lab::figures reserve_lab::read(int v) {
  figures f;
  f.sold = sold_[v].load();
  f.initial = initial_.load();
  if (v == racy) {
    f.stock = std::atomic_ref<std::int64_t>(racy_stock_).load(std::memory_order_relaxed);
  } else if (v == atomic) {
    f.stock = atomic_stock_.load();
  } else {
    std::lock_guard lock(mutex_);
    f.stock = mutex_stock_;
  }
  return f;
}

void reserve_lab::reset(int stock) {
  std::atomic_ref<std::int64_t>(racy_stock_).store(stock, std::memory_order_relaxed);
  atomic_stock_.store(stock);
  {
    std::lock_guard lock(mutex_);
    mutex_stock_ = stock;
  }
  for (auto& s : sold_) s.store(0);
  initial_.store(stock);
}

}  // namespace stampede
