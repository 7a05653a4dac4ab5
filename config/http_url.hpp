#pragma once
/// \file downstream.url: an http:// URL split into what a client connects to and asks for.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stampede {

struct http_url {
  std::string host;  ///< a name or an IP literal (without the brackets of IPv6)
  std::uint16_t port = 80;
  std::string path;  ///< the path, "/" if none; a call adds "?ms=N"
};

/// Parses `text`: http only, a host, an optional port, a path without query or fragment.
/// On failure returns nullopt and sets `why`.
std::optional<http_url> parse_http_url(std::string_view text, std::string& why);

}  // namespace stampede
