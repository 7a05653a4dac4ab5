// libFuzzer target: bytes → the server's own request_reader (raw-header scan → Beast's
// parser → framing checks), fed as the session feeds it, → router → validated handler
// parameters. Nothing here may crash, hang, or let through parameters outside their limits.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "handlers/router.hpp"
#include "server/request_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The bytes arrive in two reads, split where the first byte says, as a socket may deliver
  // them: the reader must give the same verdict however the request is cut.
  boost::beast::flat_buffer buffer;
  std::size_t first = size == 0 ? 0 : data[0] % (size + 1);
  stampede::request_reader reader(8192, 65536, 2048);
  std::optional<stampede::read_status> verdict;
  for (auto [from, to] : {std::pair{std::size_t{0}, first}, std::pair{first, size}}) {
    auto room = buffer.prepare(to - from);
    if (to > from) std::memcpy(room.data(), data + from, to - from);
    buffer.commit(to - from);
    verdict = reader.feed(buffer);
    if (verdict) break;
  }
  if (verdict != stampede::read_status::ok) return 0;
  auto req = reader.release();

  const stampede::work_limits limits{60000, 100, 4096};
  auto routed = stampede::route(req.method_string(), req.target(), limits);
  if (routed.error) {
    int s = routed.error->status;
    if (s < 400 || s >= 500) std::abort();
    return 0;
  }
  const auto& p = routed.params;
  if (p.ms < 0 || p.ms > limits.max_ms || p.n < 1 || p.n > limits.max_fanout) std::abort();
  if (p.kb < -1 || p.kb > limits.max_kb) std::abort();
  if (routed.handler == stampede::handler_id::other) std::abort();
  return 0;
}
