#include "server/server.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "server/admin.hpp"
#include "server/execution_policy.hpp"
#include "server/reloader.hpp"
#include "server/session.hpp"

namespace stampede {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

void open_acceptor(tcp::acceptor& a, const endpoint& e, int backlog) {
  tcp::endpoint ep(asio::ip::make_address(e.host), e.port);
  a.open(ep.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  if (ep.protocol() == tcp::v6()) a.set_option(asio::ip::v6_only(true));
  a.bind(ep);
  a.listen(backlog);
}

std::string bound(const tcp::acceptor& a) {
  auto ep = a.local_endpoint();
  auto addr = ep.address().to_string();
  if (ep.address().is_v6()) addr = "[" + addr + "]";
  return addr + ":" + std::to_string(ep.port());
}

}  // namespace

struct server::impl {
  impl(config initial, std::string p, std::vector<override_value> o)
      : cfg(std::make_shared<const config>(std::move(initial))),
        lab(lab_settings_of(*cfg.load())),
        policy(std::shared_ptr<execution_policy>(make_policy(*cfg.load(), stats))),
        dependency(cfg.load()->downstream.capacity),
        fe{stats, cfg, policy, dependency, lab},
        reload(std::move(p), std::move(o), fe, stats, dependency, lab),
        io_threads(cfg.load()->main.io_threads),
        main_io(io_threads),
        admin_io(1),
        view{stats,
             [this] { return boost::json::serialize(to_json(*cfg.load())); },
             [this] { return cfg.load()->admin.token; },
             live,
             lab,
             [this] { return to_string(policy.load()->mode()); }} {
    const auto& path = reload.path();
    live.set_config_path(path.empty() ? std::string() : std::filesystem::absolute(path).string());
    stats.set_active_mode(cfg.load()->mode);
    dependency.on_wait = [this](double seconds) {
      stats.downstream_wait_seconds().Observe(seconds);
    };
    stats.watch_downstream(&dependency);
    stats.watch_labs(&lab);
    fe.lane = &lane;
  }

  metrics stats;
  shared_slot<const config> cfg;
  /// The failure labs' shared state: declared before the policies, whose work may wait in it.
  labs lab;
  shared_slot<execution_policy> policy;
  downstream dependency;  ///< shared by every mode: a mode switch does not reset its line
  /// The live page's last ten minutes, sampled on the admin thread.
  live_history live{
      600,
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()};
  front_end fe;
  reloader reload;       ///< SIGHUP and the file watch (admin thread)
  const int io_threads;  ///< main.io_threads, fixed until restart
  asio::io_context main_io;
  /// How finished work gets back to its connection's I/O thread.
  completion_lane lane{main_io.get_executor(), io_threads == 1};
  asio::io_context admin_io;  ///< admin port, signals and the config watch: always responsive
  /// The main acceptor is used by the accept loop and by shutdown; with several I/O threads
  /// they would race, so both run on this strand.
  asio::strand<asio::io_context::executor_type> accept_strand{main_io.get_executor()};
  tcp::acceptor main_acceptor{main_io};
  tcp::acceptor admin_acceptor{admin_io};
  admin_view view;
  int stop_signals = 0;
  std::atomic<bool> acceptor_closed{false};  ///< shutdown has taken the backlog and closed it

  /// Where a new connection's session runs: a strand of its own when several threads run the
  /// I/O context; with one thread (the default) a strand would only cost.
  asio::any_io_executor session_executor() {
    if (io_threads == 1) return main_io.get_executor();
    return asio::make_strand(main_io);
  }

  /// Starts a session for `socket`, or closes it at once past http.max_connections.
  void admit(tcp::socket socket) {
    if (fe.open_connections.load() >= cfg.load()->http.max_connections) {
      stats.connections_refused().Increment();
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    // The socket was accepted onto the session's executor (see session_executor): the session
    // and its stream's deadline timer share it.
    start_session(std::move(socket), fe);
  }

  asio::awaitable<void> accept_main() {
    // The acceptor is non-blocking: after each asynchronous accept, the backlog is drained
    // with synchronous accepts, so a burst of connections is taken in one turn of the I/O
    // loop rather than one per turn behind every other ready handler.
    main_acceptor.non_blocking(true);
    for (;;) {
      auto [ec, socket] = co_await main_acceptor.async_accept(session_executor(), nothrow);
      if (ec == asio::error::operation_aborted) co_return;
      if (!ec && !main_acceptor.is_open()) {
        // Accepted just before shutdown closed the acceptor: answered like the rest of the
        // backlog (its session drains). Dropped here, its unread request would be reset.
        admit(std::move(socket));
        co_return;
      }
      if (!main_acceptor.is_open()) co_return;
      if (ec) {
        // Out of descriptors and the like: back off briefly rather than spin.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer pause(main_io, std::chrono::milliseconds(50));
        co_await pause.async_wait(nothrow);
        continue;
      }
      admit(std::move(socket));
      for (int i = 0; i < 256; ++i) {
        tcp::socket more(session_executor());
        boost::system::error_code again;
        main_acceptor.accept(more, again);
        if (again) break;  // would_block: the backlog is empty (or a real error: next turn)
        admit(std::move(more));
      }
    }
  }

  asio::awaitable<void> accept_admin() {
    for (;;) {
      auto [ec, socket] = co_await admin_acceptor.async_accept(nothrow);
      if (ec == asio::error::operation_aborted || !admin_acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(admin_io, run_admin_session(std::move(socket), view), asio::detached);
    }
  }

  /// Once a second, on the admin thread: the live page's sample, from the same metric families
  /// /metrics writes out. Stopped with the admin I/O context.
  asio::awaitable<void> sample_live() {
    asio::steady_timer timer(admin_io);
    auto next = std::chrono::steady_clock::now();
    for (;;) {
      auto wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                      .count();
      live.record(stats.collect(), wall, read_memory_limit());
      next += std::chrono::seconds(1);
      timer.expires_at(next);
      auto [ec] = co_await timer.async_wait(nothrow);
      if (ec) co_return;
    }
  }

  /// The labs' detectors (a lock cycle, a starved pool), ten times a second on the admin
  /// thread, which answers whatever the main port is doing.
  asio::awaitable<void> watch_labs() {
    asio::steady_timer timer(admin_io);
    for (;;) {
      timer.expires_after(std::chrono::milliseconds(100));
      auto [ec] = co_await timer.async_wait(nothrow);
      if (ec) co_return;
      for (const auto& line : lab.watch()) spdlog::warn("lab detector: {}", line);
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

  /// Stop accepting, let in-flight requests finish within the drain timeout, then answer the
  /// rest (queued: 503 shutting_down; running: asked to stop) and stop.
  asio::awaitable<void> shutdown() {
    auto drain = std::chrono::milliseconds(cfg.load()->shutdown.drain_timeout_ms);
    spdlog::info("shutting down: draining {} in-flight request(s) for up to {} ms",
                 fe.in_flight.load(), drain.count());
    fe.draining.store(true);
    asio::post(accept_strand, [this] {
      // Connections already in the backlog are taken and answered (503, or a graceful close)
      // rather than reset by the kernel when the listener closes.
      for (;;) {
        tcp::socket waiting(session_executor());
        boost::system::error_code none_left;
        main_acceptor.accept(waiting, none_left);
        if (none_left) break;
        admit(std::move(waiting));
      }
      boost::system::error_code ignored;
      main_acceptor.close(ignored);
      acceptor_closed.store(true);
    });
    // Connections waiting idle for their next request stop waiting: a request already sent
    // on one gets 503, the others a graceful close.
    fe.connections.wake_all();
    asio::steady_timer tick(admin_io);
    auto wait_until = [&](auto done, std::chrono::milliseconds limit) -> asio::awaitable<bool> {
      auto until = std::chrono::steady_clock::now() + limit;
      while (!done() && std::chrono::steady_clock::now() < until) {
        tick.expires_after(std::chrono::milliseconds(10));
        co_await tick.async_wait(nothrow);
      }
      co_return done();
    };
    auto idle = [this] { return fe.in_flight.load() == 0; };
    if (!co_await wait_until(idle, drain)) {
      spdlog::warn("drain timeout: stopping {} request(s)", fe.in_flight.load());
      policy.load()->stop_all();
      for (const auto& old : reload.retired()) old->stop_all();
      co_await wait_until(idle, std::chrono::milliseconds(1000));
    }
    // Then every connection writes what it owes and closes (a graceful close lingers at most
    // 500 ms): a request left unread when the process exits would be reset by the kernel.
    co_await wait_until(
        [this] { return acceptor_closed.load() && fe.open_connections.load() <= 0; },
        std::chrono::milliseconds(1000));
    main_io.stop();
    admin_io.stop();
  }
};

server::server(config initial, std::string path, std::vector<override_value> overrides)
    : impl_(std::make_unique<impl>(std::move(initial), std::move(path), std::move(overrides))) {}

server::~server() = default;

int server::run() {
  auto& s = *impl_;
  auto c = s.cfg.load();
  spdlog::set_level(spdlog::level::from_str(c->log.level));
  try {
    open_acceptor(s.main_acceptor, c->main.listen, c->main.backlog);
    open_acceptor(s.admin_acceptor, c->admin.listen, 128);
  } catch (const boost::system::system_error& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  const std::string& path = s.reload.path();
  const file_stamp loaded = path.empty() ? file_stamp{} : stamp_of(path);
  spdlog::info("stampede listening main={} admin={} mode={} config={}", bound(s.main_acceptor),
               bound(s.admin_acceptor), to_string(c->mode), path.empty() ? "(none)" : path);

  asio::co_spawn(s.accept_strand, s.accept_main(), asio::detached);
  asio::co_spawn(s.admin_io, s.accept_admin(), asio::detached);
  asio::co_spawn(s.admin_io, s.handle_signals(), asio::detached);
  asio::co_spawn(s.admin_io, s.sample_live(), asio::detached);
  asio::co_spawn(s.admin_io, s.watch_labs(), asio::detached);
  if (!path.empty()) {
    asio::co_spawn(s.admin_io, s.reload.watch_file(s.admin_io.get_executor(), loaded),
                   asio::detached);
  }

  std::vector<std::thread> io_threads;
  for (int i = 0; i < c->main.io_threads; ++i) io_threads.emplace_back([&s] { s.main_io.run(); });
  s.admin_io.run();  // the admin port runs on the thread that called run()
  for (auto& t : io_threads) t.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace stampede
