#include "server/admin.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>

#include "server/http_io.hpp"

namespace stampede {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

/// Compares in time independent of where the strings differ.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff |= static_cast<unsigned char>(b[i] ^ (i < a.size() ? a[i] : 0));
  }
  return diff == 0;
}

response text(int status, std::string body, std::string content_type) {
  response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

response serve(const http_request& req, admin_view& view) {
  std::string token = view.token();
  if (!token.empty()) {
    auto auth = req[http::field::authorization];
    if (!same_secret(auth, "Bearer " + token)) {
      auto r = error_response(401, "admin token required");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
  }
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/healthz" && path != "/config") {
    return error_response(404, "admin endpoints: /metrics /healthz /config");
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto r = error_response(405, "method not allowed; use GET");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (path == "/metrics") {
    return text(200, view.stats.serialize(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (path == "/config") return text(200, view.config_json(), "application/json");
  return text(200, "{\"status\":\"ok\"}", "application/json");
}

}  // namespace

asio::awaitable<void> run_admin_session(asio::ip::tcp::socket socket, admin_view& view) {
  stream_type stream(std::move(socket));
  boost::beast::flat_buffer buffer;
  const read_limits limits{std::chrono::seconds(30), std::chrono::seconds(10), 8192, 0, 2048};
  for (;;) {
    http_request req;
    std::chrono::steady_clock::time_point started;
    read_status got = co_await read_request(stream, buffer, req, limits, started);
    if (got == read_status::closed) co_return;
    if (got != read_status::ok) {
      co_await reject_and_close(stream, status_for(got), "malformed or oversized request",
                                std::chrono::seconds(10));
      co_return;
    }
    auto out = make_response(serve(req, view), req.version(), req.keep_alive(),
                             req.method() == http::verb::head);
    if (!co_await write_response(stream, out, std::chrono::seconds(10))) co_return;
    if (!req.keep_alive()) {
      co_await lingering_close(stream);
      co_return;
    }
  }
}

}  // namespace stampede
