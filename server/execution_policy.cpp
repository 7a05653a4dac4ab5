#include "server/execution_policy.hpp"

#include "server/modes/blocking.hpp"
#include "server/modes/bounded_pool.hpp"
#include "server/modes/coroutine.hpp"
#include "server/modes/thread_per_request.hpp"

namespace stampede {

std::unique_ptr<execution_policy> make_policy(const config& c, metrics& m) {
  switch (c.mode) {
    case mode_kind::blocking:
      return std::make_unique<blocking_policy>(c, m);
    case mode_kind::thread_per_request:
      return std::make_unique<thread_per_request_policy>(c, m);
    case mode_kind::bounded:
      return std::make_unique<bounded_pool_policy>(c, m);
    case mode_kind::coroutine:
      return std::make_unique<coroutine_policy>(c, m);
  }
  return nullptr;
}

}  // namespace stampede
