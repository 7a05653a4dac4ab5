#include "server/admin.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>

#include "server/connection.hpp"

namespace stampede {

namespace embedded {
extern const char live_page[];
extern const std::size_t live_page_size;
extern const char dygraph_js[];
extern const std::size_t dygraph_js_size;
extern const char dygraph_css[];
extern const std::size_t dygraph_css_size;
}  // namespace embedded

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

/// The live page: page.html with the charting library put in its place (one document, so
/// the browser needs no second request that would have to carry the token).
const std::string& live_page() {
  static const std::string page = [] {
    std::string html(embedded::live_page, embedded::live_page_size);
    auto put = [&](std::string_view marker, const char* bytes, std::size_t size) {
      auto at = html.find(marker);
      if (at != std::string::npos) html.replace(at, marker.size(), bytes, size);
    };
    put("<!--DYGRAPH_CSS-->", embedded::dygraph_css, embedded::dygraph_css_size);
    put("<!--DYGRAPH_JS-->", embedded::dygraph_js, embedded::dygraph_js_size);
    return html;
  }();
  return page;
}

/// `after=N` of the data endpoint's query (0 when absent or not a number).
std::uint64_t after_of(std::string_view target) {
  auto q = target.find("after=");
  if (q == std::string_view::npos) return 0;
  std::uint64_t n = 0;
  for (std::size_t i = q + 6;
       i < target.size() && std::isdigit(static_cast<unsigned char>(target[i])); ++i) {
    n = n * 10 + static_cast<std::uint64_t>(target[i] - '0');
    if (n > (1ull << 53)) return 0;
  }
  return n;
}

response serve(const http_request& req, admin_view& view) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  std::string token = view.token();
  if (!token.empty()) {
    auto auth = req[http::field::authorization];
    if (!same_secret(auth, "Bearer " + token)) {
      response r;
      if (path == "/") {
        // A browser cannot send the token when it opens the page: it gets the page (which
        // holds no data) with 401, and the page asks for the token before it fetches any.
        r = text(401, live_page(), "text/html; charset=utf-8");
        r.headers.emplace_back("Cache-Control", "no-cache");
      } else {
        r = error_response(401, "admin token required", "unauthorized", view.mode());
      }
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
  }
  if (path != "/" && path != "/live/data" && path != "/metrics" && path != "/healthz" &&
      path != "/config" && path != "/labs" && path != "/labs/reset" && path != "/annotations") {
    return error_response(404,
                          "admin endpoints: / /live/data /metrics /healthz /config /labs "
                          "/labs/reset (POST) /annotations (GET, POST)",
                          "not_found", view.mode());
  }
  if (path == "/annotations" && req.method() == http::verb::post) {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (auto bad = view.board.post(req.body(), now)) {
      return error_response(400, *bad, "bad_annotation", view.mode());
    }
    return text(200, "{\"status\":\"ok\"}", "application/json");
  }
  if (path == "/labs/reset") {
    if (req.method() != http::verb::post) {
      auto r =
          error_response(405, "method not allowed; use POST", "method_not_allowed", view.mode());
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    return text(200, view.lab.reset(), "application/json");
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto r = error_response(405, "method not allowed; use GET", "method_not_allowed", view.mode());
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (path == "/metrics") {
    return text(200, view.stats.serialize(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (path == "/config") return text(200, view.config_json(), "application/json");
  if (path == "/labs") return text(200, view.lab.to_json(), "application/json");
  if (path == "/annotations") return text(200, view.board.to_json(), "application/json");
  if (path == "/") {
    auto r = text(200, live_page(), "text/html; charset=utf-8");
    r.headers.emplace_back("Cache-Control", "no-cache");  // revalidated: a new binary, a new page
    return r;
  }
  if (path == "/live/data")
    return text(200, view.live.json_after(after_of(target)), "application/json");
  return text(200, "{\"status\":\"ok\"}", "application/json");
}

}  // namespace

asio::awaitable<void> run_admin_session(asio::ip::tcp::socket socket, admin_view& view) {
  tcp_connection stream(std::move(socket));
  boost::beast::flat_buffer buffer;
  // A body only for POST /annotations: a few short strings.
  const read_limits limits{std::chrono::seconds(30), std::chrono::seconds(10), 8192, 16384, 2048};
  for (;;) {
    http_request req;
    std::chrono::steady_clock::time_point started;
    read_status got = co_await read_request(stream, buffer, req, limits, started);
    if (got == read_status::closed) co_return;
    if (got != read_status::ok) {
      const refusal r = refusal_for(got);
      co_await reject_and_close(stream, error_response(r.status, r.message, r.reason, view.mode()),
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
