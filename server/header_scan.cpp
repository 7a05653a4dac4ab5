#include "server/header_scan.hpp"

namespace stampede {

header_scan scan_header(std::string_view bytes) {
  header_scan out;
  bool line_start = true;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c == '\0') return {header_scan::state::bad, 0};  // NUL byte in the header
    if (c == '\n') return {header_scan::state::bad, 0};  // bare LF in the header
    if (c == '\r') {
      if (i + 1 == bytes.size()) return out;                          // need the next byte
      if (bytes[i + 1] != '\n') return {header_scan::state::bad, 0};  // bare CR in the header
      if (line_start) {
        if (i == 0) return {header_scan::state::bad, 0};  // empty request line
        return {header_scan::state::complete, i + 2};
      }
      ++i;  // the LF
      line_start = true;
      continue;
    }
    if (line_start && (c == ' ' || c == '\t')) {
      return {header_scan::state::bad, 0};  // line starts with white space (obsolete folding)
    }
    line_start = false;
  }
  return out;
}

}  // namespace stampede
