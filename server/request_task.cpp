#include "server/request_task.hpp"

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <string>

namespace stampede {

namespace asio = boost::asio;

namespace {

/// How many turns of its connection's queue a rejection's answer waits. Under a closed-loop
/// storm of 503s every connection comes round at the rate the machine allows, whatever the
/// server does; that time is spent either with the 503 waiting in the server or with the
/// client's next request waiting unread in its socket. A request that will be admitted waits
/// the second kind before anybody knows, so the longer a 503 waits here, the sooner an
/// admitted request is read; a refused client waits no longer either way. With nothing else
/// to do, a turn takes microseconds.
constexpr int rejection_turns = 3;

}  // namespace

void completion_lane::admitted(item* done) {
  push(done);
}

void completion_lane::rejected(item* done) {
  after_turns(done, rejection_turns);
}

void completion_lane::after_turns(item* done, int turns) {
  // Each post lands behind everything queued meanwhile, including the reads the I/O thread's
  // next look at its sockets found ready.
  asio::post(done->executor(), [this, done, turns] {
    if (turns > 1) {
      after_turns(done, turns - 1);
      return;
    }
    drain();  // admitted answers first
    done->run();
  });
}

void completion_lane::push(item* done) {
  std::lock_guard lock(mutex_);
  const bool first = items_.empty();
  items_.push_back(done);
  listed_.store(true, std::memory_order_release);
  // One wake-up per batch: a list that was not empty has one on its way already (or is being
  // taken by a drain, which takes this too). Posted under the lock: a drain could otherwise
  // finish this item, and shutdown end the I/O context, before this thread's post touched it.
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

}  // namespace stampede

namespace stampede {

namespace asio = boost::asio;

namespace {

/// A rejection as HTTP. The policy that rejected says whether, and when, a retry can help.
response overload_response(const task& t) {
  response r;
  r.status = 503;
  r.body = t.rejected()->body;
  if (t.retry_after_s() >= 0) {
    r.headers.emplace_back("Retry-After", std::to_string(t.retry_after_s()));
  }
  return r;
}

}  // namespace

request_task::request_task(task::body_fn body, mode_kind mode, mode_metrics& m,
                           downstream* dependency, execution_policy& p,
                           std::shared_ptr<work_waiter> waiter, const asio::any_io_executor& ex,
                           completion_lane& lane)
    : task(std::move(body), mode, m, dependency),
      policy_(p),
      waiter_(std::move(waiter)),
      // A tracked executor keeps the I/O context alive while the task runs elsewhere.
      executor_(asio::prefer(ex, asio::execution::outstanding_work.tracked)),
      lane_(lane) {}

void request_task::begin(std::shared_ptr<request_task> self) {
  self_ = std::move(self);
  phase_.store(submitting);
  policy_.submit(self_);
  int expected = submitting;
  if (phase_.compare_exchange_strong(expected, submitted)) {
    waiter_->work_under_way();
    return;
  }
  // Ended inside submit, on this thread or another: answered now if it ran, through the lane
  // if it was rejected.
  if (expected == ended_in_submit) finish();  // may end this task's life
}

void request_task::completed() {
  // Read before the exchange: once it has said "ended in submit", begin() may finish the task
  // and end its life on the I/O thread, so nothing of it is touched here afterwards.
  const bool turned_away = rejected() != nullptr;
  int expected = submitting;
  if (phase_.compare_exchange_strong(expected,
                                     turned_away ? rejected_in_submit : ended_in_submit) &&
      !turned_away) {
    return;  // begin() finishes it
  }
  if (turned_away) {
    lane_.rejected(this);
  } else {
    lane_.admitted(this);
  }
}

void request_task::finish() {
  // Moved out first: the waiter may drop the last reference to this task.
  auto waiter = std::move(waiter_);
  response answer = rejected() ? overload_response(*this) : take_result();
  waiter->work_done(work_outcome{std::move(self_), std::move(answer)});
}

}  // namespace stampede
