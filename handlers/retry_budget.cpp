#include "handlers/retry_budget.hpp"

#include <algorithm>

namespace stampede {

void retry_budget::set_percent(int percent) {
  std::lock_guard lock(mutex_);
  percent_ = std::clamp(percent, 0, 100);
  cap_ = std::max(reserve, static_cast<double>(percent_));  // what 100 calls earn
  balance_ = std::min(balance_, cap_);
}

void retry_budget::deposit() {
  std::lock_guard lock(mutex_);
  balance_ = std::min(cap_, balance_ + percent_ / 100.0);
}

bool retry_budget::try_withdraw() {
  std::lock_guard lock(mutex_);
  if (percent_ == 0) return true;
  if (balance_ < 1) return false;
  balance_ -= 1;
  return true;
}

double retry_budget::balance() const {
  std::lock_guard lock(mutex_);
  return balance_;
}

}  // namespace stampede
