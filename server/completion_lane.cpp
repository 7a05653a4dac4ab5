#include "server/completion_lane.hpp"

#include <boost/asio/post.hpp>

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
