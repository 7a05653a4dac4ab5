#include "server/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "server/admin.hpp"
#include "server/execution_policy.hpp"
#include "server/front_end.hpp"
#include "server/memory_cgroup.hpp"
#include "server/reloader.hpp"
#include "server/remote_client.hpp"
#include "server/sampling.hpp"
#include "server/shutdown.hpp"

namespace stampede {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::unique_ptr<remote_client> make_remote(const config& c, metrics& m) {
  if (c.downstream.url.empty()) return nullptr;
  std::string why;
  auto url = parse_http_url(c.downstream.url, why);  // checked when the config was read
  return std::make_unique<remote_client>(*url, remote_client::settings_of(c), m);
}
}  // namespace

struct server::impl {
  impl(config initial, std::string p, std::vector<override_value> o)
      : cfg(std::make_shared<const config>(std::move(initial))),
        lab(lab_settings_of(*cfg.load())),
        policy(std::shared_ptr<execution_policy>(make_policy(*cfg.load(), stats))),
        dependency(cfg.load()->downstream.capacity),
        remote(make_remote(*cfg.load(), stats)),
        fe{stats, cfg, policy, dependency, lab},
        reload(std::move(p), std::move(o), fe, stats, dependency, remote.get(), lab),
        io_threads(cfg.load()->main.io_threads),
        admin_io(1),
        view{stats,
             [this] { return boost::json::serialize(to_json(*cfg.load())); },
             [this] { return cfg.load()->admin.token; },
             live,
             lab,
             [this] { return to_string(policy.load()->mode()); },
             board} {
    const auto& path = reload.path();
    live.set_config_path(path.empty() ? std::string() : std::filesystem::absolute(path).string());
    live.set_vocabulary([this] { return stats.vocabulary_json(); });
    stats.set_active_mode(cfg.load()->mode);
    dependency.on_wait = stats.downstream_wait_observer();
    dependency.remote = remote.get();
    if (remote) {
      stats.watch_downstream([this] { return remote->stats(); });
    } else {
      stats.watch_downstream([this] { return dependency.stats(); });
    }
    stats.watch_labs(&lab);
    stats.watch_more([this](auto& families) { board.collect(families); });
  }

  /// One I/O thread's own context, run by that thread alone (as the strongest simple Beast
  /// servers run: a connection's work never crosses to another I/O thread, and no strand is
  /// needed), and the way finished work gets back to it.
  struct main_thread {
    asio::io_context io{1};
    completion_lane lane{io.get_executor()};
    /// Keeps run() going while the thread has no connection yet.
    asio::executor_work_guard<asio::io_context::executor_type> busy{io.get_executor()};
  };
  static std::vector<std::unique_ptr<main_thread>> make_main_threads(int n) {
    std::vector<std::unique_ptr<main_thread>> out;
    for (int i = 0; i < n; ++i) out.push_back(std::make_unique<main_thread>());
    return out;
  }
  std::vector<io_thread> listener_threads() {
    std::vector<io_thread> out;
    for (auto& t : main_threads) out.push_back({t->io, t->lane});
    return out;
  }

  metrics stats;
  shared_slot<const config> cfg;
  /// The failure labs' shared state: declared before the policies, whose work may wait in it.
  labs lab;
  presenter_board board;  ///< what a lesson says it runs (POST /annotations)
  shared_slot<execution_policy> policy;
  downstream dependency;  ///< shared by every mode: a mode switch does not reset its line
  /// downstream.url's client, which the dependency's calls go to; null: simulated.
  std::unique_ptr<remote_client> remote;
  /// The live page's last ten minutes, sampled on the admin thread.
  live_history live{
      600,
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()};
  front_end fe;
  reloader reload;       ///< SIGHUP and the file watch (admin thread)
  const int io_threads;  ///< main.io_threads, fixed until restart
  std::vector<std::unique_ptr<main_thread>> main_threads = make_main_threads(io_threads);
  /// Where the main port's acceptor runs. With one I/O thread, that thread's context: a
  /// handler that holds the thread (blocking mode) holds the accept loop too, and the line
  /// stays in the kernel's backlog. With several, a thread of its own: no handler holds it, so
  /// each connection reaches an I/O thread, the threads in turn.
  asio::io_context accept_io{1};
  asio::executor_work_guard<asio::io_context::executor_type> accepting{accept_io.get_executor()};
  asio::io_context& acceptor_context() { return io_threads == 1 ? main_threads[0]->io : accept_io; }
  asio::io_context admin_io;  ///< admin port, signals and the config watch: always responsive
  listener main{acceptor_context(), listener_threads(), fe};  ///< the main port
  tcp::acceptor admin_acceptor{admin_io};
  admin_view view;
  int stop_signals = 0;

  asio::awaitable<void> accept_admin() {
    for (;;) {
      auto [ec, socket] = co_await admin_acceptor.async_accept(nothrow);
      if (ec == asio::error::operation_aborted || !admin_acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(admin_io, run_admin_session(std::move(socket), view), asio::detached);
    }
  }

  /// Installed before the "listening" line, so a signal sent once that line is seen is handled.
  asio::signal_set signals{admin_io, SIGINT, SIGTERM, SIGHUP};

  asio::awaitable<void> handle_signals() {
    for (;;) {
      auto [ec, sig] = co_await signals.async_wait(nothrow);
      if (ec) co_return;
      if (sig == SIGHUP) {
        reload.reload("SIGHUP");
        continue;
      }
      if (++stop_signals > 1) {
        spdlog::warn("second stop signal: exiting now");
        std::_Exit(1);
      }
      asio::co_spawn(admin_io, shutdown(), asio::detached);
    }
  }

  asio::awaitable<void> shutdown() {
    co_await drain_for_shutdown(admin_io.get_executor(), fe, main, [this] {
      auto all = reload.retired();
      all.push_back(policy.load());
      return all;
    });
    for (auto& t : main_threads) t->io.stop();
    accept_io.stop();
    admin_io.stop();
  }
};

server::server(config initial, std::string path, std::vector<override_value> overrides)
    : impl_(std::make_unique<impl>(std::move(initial), std::move(path), std::move(overrides))) {}

server::~server() = default;

namespace {
// The lesson's runaway ends in an OOM kill only inside the limit the model assumes.
void warn_without_memory_limit(const config& c) {
  if (c.supervisor.memory_limit_mb == 0) return;
  auto cg = read_memory_cgroup();
  if (!cg.limit_bytes) {
    spdlog::warn(
        "no memory limit, though supervisor.memory_limit_mb is {}: an unbounded mode "
        "will swell instead of being OOM-killed (scripts/serve runs it in one)",
        c.supervisor.memory_limit_mb);
  } else if (*cg.limit_bytes > 2.0 * c.supervisor.memory_limit_mb * 1048576.0) {
    spdlog::warn("memory limit {} MiB, more than twice supervisor.memory_limit_mb ({})",
                 static_cast<long>(*cg.limit_bytes / 1048576.0), c.supervisor.memory_limit_mb);
  }
}
}  // namespace

int server::run() {
  auto& s = *impl_;
  auto c = s.cfg.load();
  spdlog::set_level(spdlog::level::from_str(c->log.level));
  try {
    s.main.open(c->main.listen, c->main.backlog);
    open_acceptor(s.admin_acceptor, c->admin.listen, 128);
  } catch (const boost::system::system_error& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  const std::string& path = s.reload.path();
  const file_stamp loaded = path.empty() ? file_stamp{} : stamp_of(path);
  spdlog::info("stampede listening main={} admin={} mode={} config={}", s.main.address(),
               bound_address(s.admin_acceptor), to_string(c->mode), path.empty() ? "(none)" : path);
  warn_without_memory_limit(*c);

  s.main.start();
  asio::co_spawn(s.admin_io, s.accept_admin(), asio::detached);
  asio::co_spawn(s.admin_io, s.handle_signals(), asio::detached);
  const auto admin_ex = s.admin_io.get_executor();
  asio::co_spawn(s.admin_io, sample_live(admin_ex, s.stats, s.live), asio::detached);
  asio::co_spawn(s.admin_io, watch_labs(admin_ex, s.lab), asio::detached);
  if (!path.empty()) {
    asio::co_spawn(s.admin_io, s.reload.watch_file(s.admin_io.get_executor(), loaded),
                   asio::detached);
  }

  std::vector<std::thread> io_threads;
  for (auto& t : s.main_threads) io_threads.emplace_back([&t] { t->io.run(); });
  if (s.io_threads > 1) io_threads.emplace_back([&s] { s.accept_io.run(); });
  s.admin_io.run();  // the admin port runs on the thread that called run()
  for (auto& t : io_threads) t.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace stampede
