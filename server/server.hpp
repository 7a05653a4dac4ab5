#pragma once
/// \file The server: owns the I/O contexts and their threads, and puts the parts together (the
/// main port's listener, the admin port, the active policy, reload, sampling, signals,
/// shutdown).

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace stampede {

/// \brief Runs stampede until SIGINT/SIGTERM. Thread-safety: construct and run from one thread.
class server {
 public:
  /// `path` is re-read on SIGHUP and when it changes; `overrides` (environment, flags) are
  /// re-applied over it on every reload. `path` may be empty: defaults and overrides only.
  server(config initial, std::string path, std::vector<override_value> overrides);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds, logs the addresses, serves until shutdown; returns the process exit code.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace stampede
