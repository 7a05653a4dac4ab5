#include "config/http_url.hpp"

#include <boost/url/parse.hpp>

namespace stampede {

std::optional<http_url> parse_http_url(std::string_view text, std::string& why) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) {
    why = "is not an absolute URL";
    return std::nullopt;
  }
  const auto& u = *parsed;
  if (u.scheme() != "http") {
    why = "must be an http:// URL (no TLS to a dependency)";
    return std::nullopt;
  }
  if (u.encoded_host().empty()) {
    why = "needs a host";
    return std::nullopt;
  }
  if (u.has_query() || u.has_fragment() || u.has_userinfo()) {
    why = "must have no user, query or fragment (each call adds ?ms=N)";
    return std::nullopt;
  }
  http_url out;
  out.host = u.host_type() == boost::urls::host_type::ipv6 ? std::string(u.encoded_host_address())
                                                           : std::string(u.encoded_host());
  if (u.has_port()) {
    if (u.port_number() == 0) {
      why = "needs a port from 1 to 65535";
      return std::nullopt;
    }
    out.port = u.port_number();
  }
  out.path = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  return out;
}

}  // namespace stampede
