#pragma once
/// \file A strict look at a request's raw header bytes before Beast parses them, for what
/// Beast accepts but a careful server must not: obsolete line folding (which Beast unfolds
/// silently), bare CR and bare LF. Pure: bytes in, a verdict out.

#include <cstddef>
#include <string_view>

namespace stampede {

/// What the buffered bytes of a request header are so far.
struct header_scan {
  enum class state { incomplete, complete, bad } verdict = state::incomplete;
  std::size_t length = 0;  ///< complete: bytes up to and including the blank line
};

/// Scans `bytes` from the start of a request. `complete` once CRLF CRLF ends the header
/// block and every line before it is well formed; `bad` at the first bare CR, bare LF, NUL,
/// or line starting with white space (obs-fold); `incomplete` otherwise.
header_scan scan_header(std::string_view bytes);

}  // namespace stampede
