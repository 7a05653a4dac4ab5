// The yardstick for scripts/bench: the strongest minimal Beast HTTP/1.1 server. Each thread
// runs an io_context of its own with its own acceptor on the same port (SO_REUSEPORT: the
// kernel spreads connections over them), so nothing is shared between threads: no locks in the
// event loop, no cross-thread wake-ups. One coroutine per connection, one stream deadline set
// before every operation, a fixed /healthz answer, keep-alive. Whatever stampede costs beyond
// this, at the same thread count, is stampede's own overhead.
//   stampede-bench-reference [PORT] [THREADS]   (loopback only; prints "listening PORT")

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

asio::awaitable<void> serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  for (;;) {
    stream.expires_after(std::chrono::seconds(30));
    http::request<http::empty_body> req;
    auto [rec, rn] = co_await http::async_read(stream, buffer, req, nothrow);
    if (rec) break;  // closed, timed out or malformed: nothing more to say
    const bool found = req.target() == "/healthz";
    http::response<http::string_body> res{found ? http::status::ok : http::status::not_found,
                                          req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = found ? R"({"status":"ok"})" : R"({"error":"not found"})";
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(10));
    auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

/// One thread's loop: an acceptor of its own on `port` (0: pick one; the first loop does).
struct loop {
  asio::io_context io{1};  // run by one thread: the loop needs no locking
  tcp::acceptor acceptor{io};
  explicit loop(unsigned short port) {
    tcp::endpoint at{asio::ip::make_address("127.0.0.1"), port};
    acceptor.open(at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    int one = 1;
    ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acceptor.bind(at);
    acceptor.listen(4096);
    asio::co_spawn(io, accept(acceptor), asio::detached);
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
  int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 1;
  std::vector<std::unique_ptr<loop>> loops;
  loops.push_back(std::make_unique<loop>(port));
  port = loops[0]->acceptor.local_endpoint().port();
  for (int i = 1; i < threads; ++i) loops.push_back(std::make_unique<loop>(port));
  std::printf("listening %u\n", port);
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([l = loops[i].get()] { l->io.run(); });
  loops[0]->io.run();
  for (auto& t : pool) t.join();
}
