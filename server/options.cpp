#include "server/options.hpp"

#include <CLI/CLI.hpp>

namespace stampede {

std::variant<options, int> parse_options(int argc, char** argv) {
  CLI::App app{
      "stampede: one HTTP server, four execution modes (blocking, thread_per_request, "
      "bounded, coroutine), and the metrics that show what unbounded concurrency costs.\n"
      "Every config key can also be set by an environment variable STAMPEDE_<SECTION>_<KEY>, "
      "e.g. STAMPEDE_BOUNDED_WORKERS=8. Precedence: flag > environment > file > default."};
  options o;
  std::string check;
  app.add_option("-c,--config", o.config_path, "YAML config file (watched and reloaded live)");
  app.add_option("--check-config", check, "Validate FILE (with environment and flags) and exit");
  app.add_flag("--print-config", o.print_config,
               "Print the effective config (file, environment, flags) as JSON, each key's "
               "source under \"sources\", and exit");

  struct flag {
    const char* name;
    const char* key;
    const char* help;
  };
  static const flag flags[] = {
      {"--mode", "mode", "blocking | thread_per_request | bounded | coroutine"},
      {"--listen", "main.listen", "Main port address IP:PORT (port 0 picks one)"},
      {"--admin-listen", "admin.listen", "Admin port address IP:PORT (/metrics /healthz /config)"},
      {"--io-threads", "main.io_threads", "I/O threads of the main port"},
      {"--workers", "bounded.workers", "bounded: worker threads"},
      {"--queue-capacity", "bounded.queue_capacity", "bounded: queue capacity"},
      {"--queue-timeout-ms", "bounded.queue_timeout_ms", "bounded: max time queued"},
      {"--max-threads", "thread_per_request.max_threads",
       "thread_per_request: safety ceiling on request threads"},
      {"--log-level", "log.level", "trace | debug | info | warn | error | critical | off"},
  };
  std::vector<std::string> values(std::size(flags));
  std::vector<CLI::Option*> opts;
  for (std::size_t i = 0; i < std::size(flags); ++i) {
    opts.push_back(app.add_option(flags[i].name, values[i],
                                  std::string(flags[i].help) + " [" + flags[i].key + "]"));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.config_path_given = app.count("--config") > 0;
  if (app.count("--check-config") > 0) o.check_config = check;
  for (std::size_t i = 0; i < std::size(flags); ++i) {
    if (opts[i]->count() > 0) {
      o.flags.push_back({flags[i].key, values[i], std::string("flag ") + flags[i].name});
    }
  }
  return o;
}

}  // namespace stampede
