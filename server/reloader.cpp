#include "server/reloader.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/remote_client.hpp"

namespace stampede {

namespace asio = boost::asio;

file_stamp stamp_of(const std::string& path) {
  std::error_code ec;
  file_stamp s;
  s.mtime = std::filesystem::last_write_time(path, ec);
  if (ec) return s;
  s.size = std::filesystem::file_size(path, ec);
  s.exists = !ec;
  return s;
}

lab_settings lab_settings_of(const config& c) {
  return lab_settings{
      c.labs.stock,          c.labs.wait_ms,
      c.labs.max_leaked,     c.labs.deadlock_detect_ms,
      c.labs.deadlock_break, {c.labs.cache_entries, c.labs.cleanup_queue, c.labs.max_cleanups}};
}

void reloader::reload(const std::string& why) {
  if (path_.empty()) return;
  auto current = fe_.cfg.load();
  config next;
  try {
    next = load_config(path_, overrides_);
  } catch (const config_error& e) {
    stats_.config_reloads(false).Increment();
    spdlog::error("config reload ({}) rejected, keeping the running config: {}", why, e.what());
    return;
  }
  for (const auto& key : restart_keys_changed(*current, next)) {
    spdlog::warn("config reload: {} changes only on restart; keeping the running value", key);
  }
  // A toggle in the file that a flag or variable hides would otherwise look like a reload that
  // did nothing. Restart-only keys are left out: a reload never applies them anyway.
  for (const auto& m : next.masked) {
    if (restart_only(m.key)) continue;
    spdlog::warn("config reload: {} is {} in {}, but {} sets it to {}, and wins on every reload",
                 m.key, m.file_value, m.file_where, m.source, m.value);
  }
  next.main = current->main;
  next.admin.listen = current->admin.listen;
  spdlog::set_level(spdlog::level::from_str(next.log.level));
  next.downstream.url = current->downstream.url;
  dependency_.set_capacity(next.downstream.capacity);
  if (remote_ != nullptr) remote_->configure(remote_client::settings_of(next));
  lab_.configure(lab_settings_of(next));
  auto active = fe_.policy.load();
  if (next.mode != active->mode()) {
    // New requests go to the new policy; in-flight ones hold the old one until they finish.
    std::erase_if(retired_, [](const auto& p) { return p.expired(); });
    retired_.push_back(active);
    fe_.policy.store(std::shared_ptr<execution_policy>(make_policy(next, stats_)));
    stats_.set_active_mode(next.mode);
  } else {
    active->reconfigure(next);
  }
  fe_.cfg.store(std::make_shared<const config>(next));
  fe_.generation.fetch_add(1);  // sessions pick up config and policy at their next request
  stats_.config_reloads(true).Increment();
  spdlog::info("config reloaded ({}): mode={}", why, to_string(next.mode));
}

asio::awaitable<void> reloader::watch_file(asio::any_io_executor ex, file_stamp last) {
  asio::steady_timer timer(ex);
  for (;;) {
    auto c = fe_.cfg.load();
    timer.expires_after(std::chrono::milliseconds(c->reload.poll_ms));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (!c->reload.watch) continue;
    file_stamp now = stamp_of(path_);
    if (now != last && now.exists) {
      last = now;
      reload("file changed");
    }
  }
}

std::vector<std::shared_ptr<execution_policy>> reloader::retired() const {
  std::vector<std::shared_ptr<execution_policy>> alive;
  for (const auto& old : retired_) {
    if (auto p = old.lock()) alive.push_back(std::move(p));
  }
  return alive;
}

}  // namespace stampede
