#pragma once
/// \file Live reload: the config file re-read (on SIGHUP, or when the file changes), checked,
/// and applied to the running server, or rejected with the running config kept.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "server/front_end.hpp"

namespace stampede {

class remote_client;

/// What identifies a version of the config file on disk.
struct file_stamp {
  std::filesystem::file_time_type mtime{};
  std::uintmax_t size = 0;
  bool exists = false;
  bool operator==(const file_stamp&) const = default;
};

/// The file's stamp now (exists = false if it cannot be read).
file_stamp stamp_of(const std::string& path);

/// The labs' live settings in a config.
lab_settings lab_settings_of(const config& c);

/// \brief Re-reads and applies the config file. A mode change swaps the policy (in-flight
/// requests keep the old one until they end); other settings are applied to the running one.
/// Thread-safety: the admin thread only.
class reloader {
 public:
  /// `path` may be empty (no file: nothing to reload); `overrides` win over the file on every
  /// reload. The rest is the running server's, and must outlive this.
  reloader(std::string path, std::vector<override_value> overrides, front_end& fe, metrics& stats,
           downstream& dependency, remote_client* remote, labs& lab)
      : path_(std::move(path)),
        overrides_(std::move(overrides)),
        fe_(fe),
        stats_(stats),
        dependency_(dependency),
        remote_(remote),
        lab_(lab) {}

  const std::string& path() const { return path_; }
  /// Reloads now; `why` is logged. A bad file is logged (file, line, key) and counted, and the
  /// running config stays.
  void reload(const std::string& why);
  /// Polls the file every reload.poll_ms while reload.watch is on, and reloads when it has
  /// changed. `last` is the file as loaded at start. Ends when `ex`'s context stops.
  boost::asio::awaitable<void> watch_file(boost::asio::any_io_executor ex, file_stamp last);
  /// Policies switched away from whose requests may still run: shutdown stops them too.
  std::vector<std::shared_ptr<execution_policy>> retired() const;

 private:
  const std::string path_;
  const std::vector<override_value> overrides_;
  front_end& fe_;
  metrics& stats_;
  downstream& dependency_;
  remote_client* remote_;  ///< null without downstream.url
  labs& lab_;
  std::vector<std::weak_ptr<execution_policy>> retired_;
};

}  // namespace stampede
