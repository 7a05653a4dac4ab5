#pragma once
/// \file One main-port connection: read a request, route it, hand it to the active mode,
/// watch for the client leaving meanwhile, write the answer. Keep-alive, pipelining in order.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/serializer.hpp>
#include <memory>
#include <optional>

#include "server/connection.hpp"
#include "server/front_end.hpp"
#include "server/request_task.hpp"

namespace stampede {

/// \brief One main-port connection. The usual path — read, route, hand the work to the mode,
/// write, read again — is a chain of completion handlers on one object, so a connection that
/// waits (idle, or for its work) holds that object and one pending operation, not a stack of
/// coroutine frames. The rare paths (a request that trickles in, a refusal, the closing
/// handshake, shutdown) are coroutines spawned on the connection's executor; each holds the
/// connection and ends it. Everything runs on the socket's executor, its I/O thread's context,
/// which that thread alone runs. `Connection` is tcp_connection, or a test's stand-in with its
/// interface.
template <class Connection>
class session final : public work_waiter,
                      public drainable,
                      public std::enable_shared_from_this<session<Connection>> {
 public:
  /// `lane`: how finished work gets back to the I/O thread that runs `conn`'s executor.
  session(Connection conn, front_end& fe, completion_lane& lane)
      : fe_(fe), lane_(lane), open_(fe.open_connections), conn_(std::move(conn)) {
    fe_.stats.connections_active().Increment();
  }
  ~session() {
    if (listed_) fe_.connections.remove(*listed_);
    fe_.stats.connections_active().Decrement();
  }

  void start() {
    listed_ = fe_.connections.add(this->weak_from_this());
    next_request();
  }

  // work_waiter: the request's work, handed to the mode.
  void work_under_way() override { watch(); }
  bool client_already_gone(steady::time_point since) override {
    if (!gone_at_ && conn_.peer_gone()) gone_at_ = since;
    return gone_at_.has_value();
  }
  void work_done(work_outcome done) override;

  void wake_for_drain(std::shared_ptr<drainable> self) override {
    boost::asio::post(conn_.get_executor(), [this, keep = std::move(self)] {
      // Only a wait for the next request is cut short; work under way is answered first.
      if (idle_) conn_.cancel();
    });
  }

 private:
  using self_ptr = std::shared_ptr<session>;
  /// Most requests fit; a connection waiting for its next request holds no more than this.
  static constexpr std::size_t first_read = 512;

  read_limits limits() const {
    const auto& h = cfg_->http;
    return read_limits{std::chrono::milliseconds(h.idle_timeout_ms),
                       std::chrono::milliseconds(h.header_timeout_ms),
                       static_cast<std::uint32_t>(h.max_header_bytes),
                       static_cast<std::uint64_t>(h.max_body_bytes),
                       static_cast<std::size_t>(h.max_target_bytes)};
  }
  std::chrono::milliseconds write_timeout() const {
    return std::chrono::milliseconds(cfg_->http.write_timeout_ms);
  }
  double seconds_since_start() const {
    return std::chrono::duration<double>(steady::now() - started_).count();
  }
  template <class Coroutine>
  void spawn(Coroutine&& c) {
    boost::asio::co_spawn(conn_.get_executor(), std::forward<Coroutine>(c), boost::asio::detached);
  }

  void next_request();
  void on_read(boost::system::error_code ec, std::size_t n);
  void parse();
  void serve();
  void respond(response res);
  void on_written(boost::system::error_code ec);
  void refuse(read_status why);
  void watch();
  void readable(boost::system::error_code ec, std::uint64_t request);
  self_ptr self() { return this->shared_from_this(); }

  static boost::asio::awaitable<void> read_rest(self_ptr self,
                                                std::unique_ptr<request_reader> reader);
  static boost::asio::awaitable<void> refuse_and_close(self_ptr self, response answer);
  static boost::asio::awaitable<void> close_gracefully(self_ptr self);
  static boost::asio::awaitable<void> drain(self_ptr self);

  front_end& fe_;
  completion_lane& lane_;  ///< this connection's I/O thread's
  scoped_count open_;      ///< fe.open_connections (the gauge is kept by the constructor)
  std::optional<connection_list::handle> listed_;  ///< in fe_.connections while open
  bool idle_ = false;  ///< waiting for the first bytes of the next request
  Connection conn_;
  boost::beast::flat_buffer buffer_;
  // This connection's view of the config and the mode, refreshed when the server swaps either
  // (fe.generation), instead of taking both slots' locks per request.
  std::uint64_t seen_ = ~std::uint64_t{0};
  std::shared_ptr<const config> cfg_;
  std::shared_ptr<execution_policy> active_;
  // The request under way.
  http_request req_;
  steady::time_point started_;
  std::shared_ptr<execution_policy> policy_;  ///< the mode it started under, until it ends
  handler_id handler_ = handler_id::other;
  int status_ = 0;
  bool keep_alive_ = false;
  std::optional<scoped_count> busy_;           ///< fe.in_flight while a request is under way
  std::uint64_t request_ = 0;                  ///< counts requests: a watch is for one of them
  std::shared_ptr<task> work_;                 ///< its work while under way, for client_gone
  std::optional<steady::time_point> gone_at_;  ///< when its client left, if it did
  bool watching_ = false;                      ///< a watch is pending for this request
  http_response out_;
  /// Only while an answer is being written: a waiting connection holds none.
  std::unique_ptr<boost::beast::http::response_serializer<boost::beast::http::string_body>> sr_;
  /// Answers written inline inside one another (pipelined requests answered inline by
  /// blocking); past the limit the write goes through the queue, which ends the recursion.
  /// Eight keep the stack shallow, and are enough that a short pipeline needs no turn.
  int depth_ = 0;
  static constexpr int max_inline_depth = 8;
};

extern template class session<tcp_connection>;

/// Serves one main-port connection until it closes, on the socket's executor (returns at once).
void start_session(boost::asio::ip::tcp::socket socket, front_end& fe, completion_lane& lane);

}  // namespace stampede
