#pragma once
/// \file One main-port connection: read a request, route it, hand it to the active mode,
/// watch for the client leaving meanwhile, write the answer. Keep-alive, pipelining in order.

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "config/config.hpp"
#include "server/execution_policy.hpp"
#include "server/metrics.hpp"

namespace stampede {

/// \brief What every session shares, owned by the server. Thread-safety: all members are
/// safe to read from any I/O thread; the server swaps config and policy atomically.
struct front_end {
  metrics& stats;
  std::atomic<std::shared_ptr<const config>>& cfg;
  std::atomic<std::shared_ptr<execution_policy>>& policy;
  downstream& dependency;  ///< the simulated dependency every mode shares
  /// Bumped after every swap of cfg or policy: a session keeps its own copies and reloads them
  /// only when this has changed, instead of two atomic shared_ptr loads per request.
  std::atomic<std::uint64_t> generation{0};
  std::atomic<bool> draining{false};  ///< shutdown: finish the current request, then close
  std::atomic<int> in_flight{0};      ///< requests read and not yet answered
};

/// Serves one main-port connection until it closes, on the socket's executor (returns at once).
void start_session(boost::asio::ip::tcp::socket socket, front_end& fe);

}  // namespace stampede
