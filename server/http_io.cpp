#include "server/http_io.hpp"

#include <algorithm>
#include <cctype>

namespace stampede {

namespace http = boost::beast::http;

http_response make_response(response res, unsigned version, bool keep_alive, bool head_request) {
  http_response out{static_cast<http::status>(res.status), version};
  out.set(http::field::server, "stampede");
  out.set(http::field::content_type, "application/json");
  out.set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : res.headers) out.set(name, value);
  out.keep_alive(keep_alive);
  out.body() = std::move(res.body);
  out.prepare_payload();
  if (head_request) out.body().clear();  // Content-Length stays that of the GET body
  return out;
}

bool is_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace stampede
