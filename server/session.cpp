#include "server/session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>

#include "handlers/router.hpp"
#include "server/http_io.hpp"
#include "server/run_task.hpp"

namespace stampede {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

/// The one place where a typed rejection becomes HTTP. The policy that rejected says whether,
/// and when, a retry can help.
response overload_response(const task& t) {
  // The bodies are few and fixed: made once, not serialised for every rejection.
  static const auto bodies = [] {
    std::array<std::array<std::string, mode_count>, reject_reason_count> b;
    for (int why = 0; why < reject_reason_count; ++why) {
      for (int mode = 0; mode < mode_count; ++mode) {
        auto reason = static_cast<reject_reason>(why);
        boost::json::object body;
        body["error"] = reason == reject_reason::shutting_down ? "shutting down" : "overloaded";
        body["reason"] = to_string(reason);
        body["mode"] = to_string(static_cast<mode_kind>(mode));
        b[why][mode] = boost::json::serialize(body);
      }
    }
    return b;
  }();
  const reject_reason why = *t.rejected();
  response r;
  r.status = 503;
  r.body = bodies[static_cast<int>(why)][static_cast<int>(t.mode())];
  if (t.retry_after_s() >= 0) {
    r.headers.emplace_back("Retry-After", std::to_string(t.retry_after_s()));
  }
  return r;
}

/// A request id worth echoing: short, and only characters safe in a header.
bool is_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

/// Counts a connection open for the lifetime of the session.
struct connection_count {
  explicit connection_count(prometheus::Gauge& g) : gauge(g) { gauge.Increment(); }
  ~connection_count() { gauge.Decrement(); }
  prometheus::Gauge& gauge;
};

struct in_flight_count {
  explicit in_flight_count(std::atomic<int>& c) : count(c) { ++count; }
  ~in_flight_count() { --count; }
  std::atomic<int>& count;
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket connection, front_end& fe) {
  connection_count open(fe.stats.connections_active());
  boost::system::error_code ignored;
  connection.set_option(tcp::no_delay(true), ignored);
  stream_type stream(std::move(connection));
  tcp::socket& socket = stream.socket();
  boost::beast::flat_buffer buffer;

  // This session's view of the config and the mode, refreshed when the server swaps either.
  std::uint64_t seen = ~std::uint64_t{0};
  std::shared_ptr<const config> cfg;
  std::shared_ptr<execution_policy> active;

  while (!fe.draining.load()) {
    if (std::uint64_t now = fe.generation.load(); now != seen) {
      seen = now;
      cfg = fe.cfg.load();
      active = fe.policy.load();
    }
    const auto& h = cfg->http;
    const auto write_timeout = std::chrono::milliseconds(h.write_timeout_ms);

    http_request req;
    steady::time_point started;
    read_status got =
        co_await read_request(stream, buffer, req,
                              read_limits{std::chrono::milliseconds(h.idle_timeout_ms),
                                          std::chrono::milliseconds(h.header_timeout_ms),
                                          static_cast<std::uint32_t>(h.max_header_bytes),
                                          static_cast<std::uint64_t>(h.max_body_bytes),
                                          static_cast<std::size_t>(h.max_target_bytes)},
                              started);
    if (got == read_status::closed) co_return;

    // The mode is read once per request: a live switch applies to the next request, and
    // this one finishes under the policy it started with (held here until it completes).
    std::shared_ptr<execution_policy> policy = active;
    const mode_kind mode = policy->mode();
    auto seconds_since_start = [&] {
      return std::chrono::duration<double>(steady::now() - started).count();
    };

    if (got != read_status::ok) {
      int status = status_for(got);
      fe.stats.count_request(mode, handler_id::other, status, seconds_since_start());
      co_await reject_and_close(stream, status,
                                got == read_status::timeout ? "request not received in time"
                                                            : "malformed or oversized request",
                                write_timeout);
      co_return;
    }
    in_flight_count busy(fe.in_flight);

    route_result routed =
        route(req.method_string(), req.target(),
              work_limits{cfg->limits.max_ms, cfg->limits.max_fanout, cfg->limits.max_kb});
    response res;
    if (routed.error) {
      res = std::move(*routed.error);
    } else {
      auto& mm = fe.stats.for_mode(mode);
      if (routed.params.kb < 0) routed.params.kb = cfg->work.request_kb;
      work_outcome done = co_await run_task(
          *policy,
          [h = routed.handler, p = routed.params](const work_context& ctx) {
            return handle(h, p, ctx);
          },
          mm, &fe.dependency,
          watched_connection{socket, buffer, static_cast<std::size_t>(h.max_header_bytes) * 4});
      const task* t = done.t.get();
      if (done.gone_at) {
        mm.wasted_seconds->Increment(t->wasted_after(*done.gone_at));
        fe.stats.count_request(mode, routed.handler, 499, seconds_since_start());
        mm.client_disconnects->Increment();  // last: tests wait on it, then read the others
        socket.close(ignored);
        co_return;
      }
      if (t->rejected()) {
        res = overload_response(*t);
      } else {
        res = t->result();
      }
    }

    // Any 4xx closes the connection: a client that sent something wrong gets its answer and
    // no chance to have a next request read out of what it sent.
    bool keep_alive =
        req.keep_alive() && !fe.draining.load() && (res.status < 400 || res.status >= 500);
    auto out = make_response(res, req.version(), keep_alive,
                             req.method() == boost::beast::http::verb::head);
    out.set("X-Stampede-Mode", to_string(mode));
    if (auto id = req["X-Request-Id"]; is_request_id(id)) out.set("X-Request-Id", id);
    bool wrote = co_await write_response(stream, out, write_timeout);
    fe.stats.count_request(mode, routed.handler, wrote ? res.status : 499, seconds_since_start());
    if (!wrote) {
      fe.stats.for_mode(mode).client_disconnects->Increment();
      co_return;
    }
    if (fe.generation.load() != seen) active.reset();  // switched meanwhile: let the old go
    if (!keep_alive) {
      buffer.clear();
      co_await lingering_close(stream);
      co_return;
    }
  }
  // Draining for shutdown: a request already sent on this connection gets a clear answer;
  // otherwise the connection is closed gracefully (not reset).
  boost::system::error_code ec;
  if (buffer.size() > 0 || socket.available(ec) > 0) {
    auto write_timeout = std::chrono::milliseconds(fe.cfg.load()->http.write_timeout_ms);
    fe.stats.count_request(fe.policy.load()->mode(), handler_id::other, 503, 0);
    co_await reject_and_close(stream, 503, "shutting down", write_timeout);
  } else {
    co_await lingering_close(stream);
  }
}

}  // namespace stampede
