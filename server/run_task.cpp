#include "server/run_task.hpp"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <cerrno>

namespace stampede {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

bool peer_gone(tcp::socket& socket) {
  char c;
  ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

namespace {

/// How many turns of the I/O thread's queue a rejection's answer waits. Under a closed-loop
/// storm of 503s every connection comes round at the rate the machine allows, whatever the
/// server does (800 connections at ~10,000 503s a second: every ~80 ms); that time is spent
/// either with the 503 waiting in the server or with the client's next request waiting unread
/// in its socket. A request that will be admitted waits the second kind before anybody knows,
/// so the longer a 503 waits in the server, the sooner an admitted request is read. The I/O
/// thread does the same work either way, and a refused client waits no longer: wrk's latency
/// over all answers (503s nearly all) stayed at p50 66-83 ms against 70-72 ms with one turn.
/// With nothing else to do, a turn takes microseconds (the saturated pool's 503 p99: 4.2 ms
/// with one turn, 3.2 and 2.5 ms with three). Measured, bounded CPU spike (4 workers, 800 wrk
/// connections), admitted p90 over unloaded p90, interleaved: 1 turn 8.2x/9.0x/7.7x against 2
/// turns 5.6x/4.5x/6.1x; 2 turns 5.8x/6.2x/3.9x against 3 turns 4.0x/4.2x/5.3x. One batch for all
/// rejections listed within two turns measured no better than one turn (8.3-8.7x): the hold must be
/// per answer.
constexpr int rejection_turns = 3;

/// A task that is also its own completion and disconnect watch. Everything but completed()
/// runs on the connection's executor, so the flags need no lock.
class watched_task final : public task, public completion_lane::item {
 public:
  watched_task(task::body_fn body, mode_kind mode, mode_metrics& m, downstream* dependency,
               execution_policy& p, watched_connection conn, std::shared_ptr<work_waiter> waiter,
               const asio::any_io_executor& ex, completion_lane* lane)
      : task(std::move(body), mode, m, dependency),
        policy_(p),
        conn_(conn),
        // A tracked executor keeps the I/O context alive while the task runs elsewhere.
        executor_(asio::prefer(ex, asio::execution::outstanding_work.tracked)),
        waiter_(std::move(waiter)),
        lane_(lane) {
    set_owner(&p);
  }

  /// Taken from the lane on the I/O thread.
  void run() override { task_ended(); }

  /// Submits, then watches the connection while the work is under way. `self` is this task.
  /// Runs on the executor. Work that ends inside submit (a policy that runs it inline) is finished
  /// here, without a round trip through the executor's queue; a rejection is not watched, and
  /// its answer comes through the queue (see completed()).
  void begin(std::shared_ptr<watched_task> self) {
    self_ = std::move(self);
    switch (hand_over([&] { policy_.submit(self_); })) {
      case ended_in_submit:
        task_ended();  // may end this task's life: nothing of it is touched afterwards
        return;
      case rejected_in_submit:
        return;  // its answer is on its way through the queue; nothing to watch for
      default:
        // Under way: watch for the client leaving meanwhile.
        watch();
    }
  }

 protected:
  bool client_already_gone(steady::time_point since) override {
    if (!gone_at_ && peer_gone(conn_.socket)) gone_at_ = since;
    return gone_at_.has_value();
  }

  void completed() override {
    // Work that ended inside submit (run inline) is finished by begin() at once.
    // Admitted work that ended elsewhere comes back through the lane when there is one (ahead
    // of the I/O thread's queue), else through the queue. A rejection's answer waits
    // rejection_turns turns of the queue, behind the admitted answers and the requests already
    // waiting to be read (see rejection_turns).
    // Read before the exchange: once it has said "ended in submit", begin() may finish the task
    // and end its life on the I/O thread, so nothing of it is touched here afterwards (TSan
    // caught a read of rejected() after it, in coroutine mode, whose first run is inside submit).
    const bool rejection = rejected().has_value();
    int expected = submitting;
    if (phase_.compare_exchange_strong(expected,
                                       rejection ? rejected_in_submit : ended_in_submit) &&
        !rejection) {
      return;  // begin() finishes it
    }
    if (lane_ != nullptr && !rejection) {
      lane_->push(this);
      return;
    }
    answer_after_turns(rejection ? rejection_turns : 1);
  }

 private:
  enum phase { idle, submitting, submitted, ended_in_submit, rejected_in_submit };

  /// Finishes the task on the executor once `turns` turns of its queue have gone by: each post
  /// lands behind everything queued meanwhile, including the reads the I/O thread's next look
  /// at its sockets found ready. With nothing else to do a turn takes microseconds.
  void answer_after_turns(int turns) {
    asio::post(executor_, [this, turns] {
      if (turns > 1) {
        answer_after_turns(turns - 1);
        return;
      }
      if (lane_ != nullptr) lane_->drain();  // admitted answers first
      task_ended();
    });
  }

  /// Runs `f` (which hands the task over); returns `submitted`, or how the task ended
  /// meanwhile (on this thread or another) if it ended before f returned.
  template <class F>
  int hand_over(F&& f) {
    phase_.store(submitting);
    f();
    int expected = submitting;
    return phase_.compare_exchange_strong(expected, submitted) ? submitted : expected;
  }

  void watch() {
    watching_ = true;
    // A one-byte peek, not a readiness wait: asio starts a readiness wait by re-arming the
    // socket's epoll entry (epoll_ctl, a system call per request: 3.4 % of bounded's I/O
    // thread under wrk -c64 /healthz), while a receive on a socket that its last read left
    // empty is only queued until the next edge. The handler holds the task: the task may
    // finish (and the connection move on) before a cancelled receive's handler has run.
    conn_.socket.async_receive(
        asio::buffer(&peeked_, 1), tcp::socket::message_peek,
        asio::bind_executor(executor_, [self = self_](boost::system::error_code ec, std::size_t) {
          self->readable(ec);
        }));
  }

  void readable(boost::system::error_code ec) {
    if (finished_) return;  // cancelled when the work ended: the connection has moved on
    watching_ = false;
    if (ended_ || gone_at_ || ec == asio::error::operation_aborted) return;
    if (ec) {  // end of stream (a close or a half-close) or a reset: the client has gone
      gone_at_ = steady::now();
      policy_.client_gone(self_);
      return;
    }
    // Bytes of a next request (pipelining): kept, and the watch goes on while they fit.
    boost::system::error_code rec;
    std::size_t avail = conn_.socket.available(rec);
    std::size_t room =
        conn_.max_buffered > conn_.buffer.size() ? conn_.max_buffered - conn_.buffer.size() : 0;
    if (!rec && avail > 0 && room > 0) {
      std::size_t n = conn_.socket.read_some(conn_.buffer.prepare(std::min(avail, room)), rec);
      if (!rec) conn_.buffer.commit(n);
    }
    if (conn_.buffer.size() < conn_.max_buffered) watch();
  }

  void task_ended() {
    ended_ = true;
    if (watching_) {
      // Not waited for: its handler (operation_aborted, or readiness that raced the cancel)
      // finds the task finished and does nothing; bytes that arrived stay in the socket for the
      // connection's next read. Waiting for it would put the answer behind a second full turn
      // of the I/O thread's queue (under a 503 storm, tens of milliseconds).
      boost::system::error_code ignored;
      conn_.socket.cancel(ignored);
    }
    finish();
  }

  void finish() {
    finished_ = true;
    // Moved out first: the waiter may drop the last reference to this task.
    auto waiter = std::move(waiter_);
    response answer = take_result();
    waiter->work_done(work_outcome{std::move(self_), gone_at_, std::move(answer)});
  }

  execution_policy& policy_;
  watched_connection conn_;
  asio::any_io_executor executor_;
  std::shared_ptr<work_waiter> waiter_;
  std::shared_ptr<watched_task> self_;  ///< held while the operation is pending
  std::optional<steady::time_point> gone_at_;
  bool watching_ = false;
  bool ended_ = false;
  bool finished_ = false;  ///< handed to the waiter: nothing of the connection is touched after
  char peeked_ = 0;        ///< the watch's one-byte peek lands here
  std::atomic<int> phase_{idle};  ///< completed() and begin() agree on who finishes
  completion_lane* lane_;         ///< null: admitted work comes back through the executor
};

}  // namespace

void completion_lane::push(item* done) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = items_.empty();
    items_.push_back(done);
    listed_.store(true, std::memory_order_release);
  }
  // One wake-up per batch: a list that was not empty has one on its way already (or is being
  // taken by a drain, which takes this too).
  if (first) asio::post(io_, [this] { drain(); });
}

void completion_lane::drain_listed() {
  if (draining_) return;  // the outer drain's batch first; what was listed since has a wake-up
  draining_ = true;
  {
    std::lock_guard lock(mutex_);
    taking_.swap(items_);
    listed_.store(false, std::memory_order_relaxed);
  }
  for (item* done : taking_) done->run();
  taking_.clear();
  draining_ = false;
}

void start_task(execution_policy& p, task::body_fn body, mode_metrics& m, downstream* dependency,
                watched_connection conn, std::shared_ptr<work_waiter> waiter,
                const asio::any_io_executor& ex, completion_lane* lane) {
  auto t = std::make_shared<watched_task>(std::move(body), p.mode(), m, dependency, p, conn,
                                          std::move(waiter), ex, lane);
  t->begin(t);
}

}  // namespace stampede
