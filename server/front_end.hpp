#pragma once
/// \file What every main-port connection shares, owned by the server.

#include <atomic>
#include <cstdint>

#include "config/config.hpp"
#include "handlers/labs/labs.hpp"
#include "server/completion_lane.hpp"
#include "server/connection_list.hpp"
#include "server/execution_policy.hpp"
#include "server/metrics.hpp"
#include "server/shared_slot.hpp"

namespace stampede {

/// \brief What every session shares, owned by the server. Thread-safety: all members are
/// safe to read from any I/O thread; the server swaps config and policy under their slots' locks.
struct front_end {
  metrics& stats;
  shared_slot<const config>& cfg;
  shared_slot<execution_policy>& policy;
  downstream& dependency;  ///< the simulated dependency every mode shares
  labs& lab;               ///< the failure labs' shared state
  /// Bumped after every swap of cfg or policy: a session keeps its own copies and reloads them
  /// only when this has changed, instead of taking both slots' locks per request.
  std::atomic<std::uint64_t> generation{0};
  std::atomic<bool> draining{false};     ///< shutdown: finish the current request, then close
  std::atomic<int> in_flight{0};         ///< requests read and not yet answered
  std::atomic<int> open_connections{0};  ///< main-port connections open now
  connection_list connections{};         ///< open connections, for shutdown
  completion_lane* lane = nullptr;       ///< how finished work comes back (set before any session)
};

}  // namespace stampede
