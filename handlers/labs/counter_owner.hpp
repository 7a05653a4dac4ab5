#pragma once
/// \file The counter lab's owner variant: one task owns the counter, and increments reach it
/// as messages through a channel (Asio's concurrent_channel), each acknowledged once applied.
/// Nothing else reads or writes the count; no request takes a lock. The channel itself
/// synchronises its queue, as Go's channels do: the sharing is the channel's, not the code's.

#include <atomic>
#include <cstdint>
#include <memory>

#include "handlers/labs/lab_wait.hpp"

namespace stampede {

/// \brief The owner task, on a thread of its own started at the first message; the rest of
/// the server never sees Asio through it. Thread-safety: every member may be called from any
/// thread.
class counter_owner {
 public:
  explicit counter_owner(wait_list& waits);
  ~counter_owner();
  counter_owner(const counter_owner&) = delete;
  counter_owner& operator=(const counter_owner&) = delete;

  /// Sends one increment and waits until the owner has applied it: fired, or why the wait
  /// ended first (a reset, the halt).
  job<wait_end> add(const work_context& ctx);
  /// The count as the owner last published it.
  std::int64_t value() const { return published_.load(); }
  /// Asks the owner to start again from 0, behind the increments already sent.
  void reset();

 private:
  struct channel;
  channel& started();

  wait_list& waits_;
  std::atomic<std::int64_t> published_{0};
  std::unique_ptr<channel> channel_;
};

}  // namespace stampede
