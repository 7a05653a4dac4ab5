#pragma once
/// \file The session's members (server/session.hpp): included where a session is
/// instantiated, for tcp_connection in session.cpp and for a stand-in in the unit tests.

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/write.hpp>

#include "handlers/router.hpp"
#include "server/connection.hpp"
#include "server/request_task.hpp"
#include "server/session.hpp"

namespace stampede {

namespace asio = boost::asio;

template <class Connection>
void session<Connection>::next_request() {
  if (fe_.draining.load()) {
    spawn(drain(self()));
    return;
  }
  if (std::uint64_t now = fe_.generation.load(); now != seen_) {
    seen_ = now;
    cfg_ = fe_.cfg.load();
    active_ = fe_.policy.load();
  }
  if (buffer_.size() > 0) {  // pipelined: the next request is already here
    parse();
    return;
  }
  // Between requests: wait for the first bytes within the idle timeout, into a small buffer
  // (what is left waiting is topped up in on_read).
  conn_.expires_after(std::chrono::milliseconds(cfg_->http.idle_timeout_ms));
  idle_ = true;
  conn_.async_read_some(
      buffer_.prepare(first_read),
      [self = self()](boost::system::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

template <class Connection>
void session<Connection>::on_read(boost::system::error_code ec, std::size_t n) {
  // Answers of admitted work that has ended go out before this request is looked at.
  lane_.drain();
  idle_ = false;
  if (ec == asio::error::operation_aborted && fe_.draining.load()) {
    // Woken by shutdown (wake_for_drain): a request already sent is answered, not reset.
    spawn(drain(self()));
    return;
  }
  if (ec || n == 0) return;  // idle too long, closed or reset: the connection ends here
  buffer_.commit(n);
  if (n == first_read) {
    // Filled the first read: a larger request may be waiting whole; take what is there, up to
    // twice the header limit (headers and the start of a body), not the whole socket.
    std::size_t cap = static_cast<std::size_t>(cfg_->http.max_header_bytes) * 2;
    if (buffer_.size() < cap) buffer_.commit(conn_.read_now(buffer_.prepare(cap - buffer_.size())));
  }
  parse();
}

template <class Connection>
void session<Connection>::parse() {
  started_ = steady::now();
  auto l = limits();
  // On the heap only for as long as the parse: a connection holds no parser between requests.
  auto reader =
      std::make_unique<request_reader>(l.max_header_bytes, l.max_body_bytes, l.max_target_bytes);
  auto done = reader->feed(buffer_);
  if (!done) {  // it trickles in: the rare path
    spawn(read_rest(self(), std::move(reader)));
    return;
  }
  if (*done != read_status::ok) {
    refuse(*done);
    return;
  }
  req_ = reader->release();
  serve();
}

template <class Connection>
asio::awaitable<void> session<Connection>::read_rest(self_ptr self,
                                                     std::unique_ptr<request_reader> reader) {
  read_status got = co_await read_rest_of_request(self->conn_, self->buffer_, *reader, self->req_,
                                                  self->limits(), self->started_);
  if (got == read_status::closed) co_return;  // gone mid-request: nobody to answer
  if (got != read_status::ok) {
    self->refuse(got);
    co_return;
  }
  self->serve();
}

template <class Connection>
void session<Connection>::refuse(read_status why) {
  const refusal r = refusal_for(why);
  fe_.stats.count_request(active_->mode(), handler_id::other, r.status, seconds_since_start());
  spawn(refuse_and_close(self(), error_response(r.status, r.message, r.reason, active_->name())));
}

template <class Connection>
asio::awaitable<void> session<Connection>::refuse_and_close(self_ptr self, response answer) {
  co_await reject_and_close(self->conn_, std::move(answer), self->write_timeout());
}

template <class Connection>
void session<Connection>::serve() {
  // Nothing pipelined behind it (the usual case): the read buffer is given back, so a
  // request that waits holds no buffer.
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  busy_.emplace(fe_.in_flight);
  // The mode is read once per request: a live switch applies to the next request, and this
  // one finishes under the policy it started with (held until it completes).
  policy_ = active_;
  route_result routed =
      route(req_.method_string(), req_.target(),
            work_limits{cfg_->limits.max_ms, cfg_->limits.max_fanout, cfg_->limits.max_kb});
  handler_ = routed.handler;
  if (routed.error) {
    auto& e = *routed.error;
    response r = error_response(e.status, e.message, e.reason, policy_->name());
    if (!e.allow.empty()) r.headers.emplace_back("Allow", std::string(e.allow));
    respond(std::move(r));
    return;
  }
  if (auto deadline = req_.find(deadline_header); deadline != req_.end()) {
    auto bad = apply_deadline(deadline->value(), cfg_->limits.max_ms,
                              std::chrono::steady_clock::now(), routed.params);
    if (bad) {
      respond(error_response(bad->status, bad->message, bad->reason, policy_->name()));
      return;
    }
  }
  if (auto crit = req_.find(criticality_header); crit != req_.end()) {
    if (auto bad = apply_criticality(crit->value(), routed.params)) {
      respond(error_response(bad->status, bad->message, bad->reason, policy_->name()));
      return;
    }
  }
  if (routed.params.kb < 0) routed.params.kb = cfg_->work.request_kb;
  ++request_;
  gone_at_.reset();
  auto t = std::make_shared<request_task>(
      [h = routed.handler, p = routed.params, lab = &fe_.lab](const work_context& ctx) {
        return handle(h, p, ctx, lab);
      },
      policy_->mode(), fe_.stats.for_mode(policy_->mode()), &fe_.dependency, *policy_, self(),
      conn_.get_executor(), lane_);
  t->set_criticality(routed.params.crit);
  work_ = t;
  t->begin(std::move(t));
}

template <class Connection>
void session<Connection>::watch() {
  watching_ = true;
  conn_.async_watch([self = self(), request = request_](boost::system::error_code ec) {
    self->readable(ec, request);
  });
}

template <class Connection>
void session<Connection>::readable(boost::system::error_code ec, std::uint64_t request) {
  // Cancelled when the work ended, or for a request answered since: nothing to do.
  if (request != request_ || !watching_) return;
  watching_ = false;
  if (ec == asio::error::operation_aborted) return;
  if (ec) {  // end of stream (a close or a half-close) or a reset: the client has gone
    gone_at_ = steady::now();
    policy_->client_gone(work_);
    return;
  }
  // Bytes of a next request (pipelining): read into the request buffer, and the watch goes
  // on while they fit. Four requests' headers at most: past that a client that pipelines
  // without reading waits in the kernel's buffer, not in this server's memory.
  const auto max_buffered = static_cast<std::size_t>(cfg_->http.max_header_bytes) * 4;
  std::size_t avail = conn_.available();
  std::size_t room = max_buffered > buffer_.size() ? max_buffered - buffer_.size() : 0;
  if (avail > 0 && room > 0) buffer_.commit(conn_.read_now(buffer_.prepare(std::min(avail, room))));
  if (buffer_.size() < max_buffered) watch();
}

template <class Connection>
void session<Connection>::work_done(work_outcome done) {
  if (watching_) {
    // Not waited for: its handler finds the request answered and does nothing; bytes that
    // arrived stay in the socket for the next read. Waiting would put the answer behind a
    // second turn of the I/O thread's queue (under a 503 storm, tens of milliseconds).
    watching_ = false;
    conn_.cancel();
  }
  work_.reset();
  const mode_kind mode = policy_->mode();
  auto& mm = fe_.stats.for_mode(mode);
  if (gone_at_) {
    mm.wasted_seconds->Increment(done.t->wasted_after(*gone_at_));
    fe_.stats.count_request(mode, handler_, 499, seconds_since_start());
    mm.client_disconnects->Increment();  // last: tests wait on it, then read the others
    conn_.close();
    busy_.reset();
    return;  // the connection ends when the task lets go of it
  }
  respond(std::move(done.answer));
}

template <class Connection>
void session<Connection>::respond(response res) {
  // A 4xx closes the connection (a client that sent something wrong gets its answer and no
  // chance to have a next request read out of what it sent), but for 404, and 405 to a method
  // HTTP knows: those answer a well-formed request for something that is not there. (An
  // unknown method, a lowercase "get" say, is the kind of request a smuggler sends.)
  const bool well_formed =
      res.status == 404 ||
      (res.status == 405 && req_.method() != boost::beast::http::verb::unknown);
  const bool suspect = res.status >= 400 && res.status < 500 && !well_formed;
  keep_alive_ = req_.keep_alive() && !fe_.draining.load() && !suspect;
  status_ = res.status;
  out_ = make_response(std::move(res), req_.version(), keep_alive_,
                       req_.method() == boost::beast::http::verb::head);
  out_.set("X-Stampede-Mode", policy_->name());
  if (auto id = req_["X-Request-Id"]; is_request_id(id)) out_.set("X-Request-Id", id);
  sr_ = std::make_unique<boost::beast::http::response_serializer<boost::beast::http::string_body>>(
      out_);
  if (depth_ < max_inline_depth) {
    // Written now, on the non-blocking socket: an answer almost always fits the socket's
    // buffer at once, and its completion then needs no turn through the I/O thread's queue
    // (under a 503 storm, behind every other ready connection: tens of milliseconds before
    // this connection's next request is read). The rest, if any, is written asynchronously.
    boost::system::error_code ec;
    boost::beast::http::write(conn_, *sr_, ec);
    if (ec != asio::error::would_block) {
      ++depth_;  // bounds the recursion of pipelined requests answered inline (blocking)
      on_written(ec);
      --depth_;
      return;
    }
  }
  conn_.expires_after(write_timeout());
  boost::beast::http::async_write(
      conn_, *sr_,
      [self = self()](boost::system::error_code ec, std::size_t) { self->on_written(ec); });
}

template <class Connection>
void session<Connection>::on_written(boost::system::error_code ec) {
  const mode_kind mode = policy_->mode();
  fe_.stats.count_request(mode, handler_, ec ? 499 : status_, seconds_since_start());
  if (ec) {
    fe_.stats.for_mode(mode).client_disconnects->Increment();
    busy_.reset();
    return;
  }
  busy_.reset();
  sr_.reset();
  out_ = {};
  req_ = {};
  policy_.reset();
  if (fe_.generation.load() != seen_) active_.reset();  // switched meanwhile: let the old go
  if (!keep_alive_) {
    buffer_.clear();
    spawn(close_gracefully(self()));
    return;
  }
  next_request();
}

template <class Connection>
asio::awaitable<void> session<Connection>::close_gracefully(self_ptr self) {
  co_await lingering_close(self->conn_);
}

template <class Connection>
asio::awaitable<void> session<Connection>::drain(self_ptr self) {
  // Draining for shutdown: a request already sent on this connection gets a clear answer;
  // otherwise the connection is closed gracefully (not reset).
  if (self->buffer_.size() > 0 || self->conn_.available() > 0) {
    auto write_timeout = std::chrono::milliseconds(self->fe_.cfg.load()->http.write_timeout_ms);
    const auto policy = self->fe_.policy.load();
    self->fe_.stats.count_request(policy->mode(), handler_id::other, 503, 0);
    co_await reject_and_close(self->conn_,
                              error_response(503, "shutting down", "shutting_down", policy->name()),
                              write_timeout);
  } else {
    co_await lingering_close(self->conn_);
  }
}

}  // namespace stampede
