#include "server/request_task.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <thread>
#include <vector>

namespace stampede {
namespace {

namespace asio = boost::asio;

/// An item that counts how often, and on which thread, it was finished.
struct counted final : completion_lane::item {
  explicit counted(asio::any_io_executor e = {}) : ex(std::move(e)) {}
  asio::any_io_executor ex;
  const asio::any_io_executor& executor() const override { return ex; }
  std::atomic<int> runs{0};
  std::thread::id on;
  std::function<void()> also;
  void run() override {
    ++runs;
    on = std::this_thread::get_id();
    if (also) also();
  }
};

// Items pushed from other threads are each finished once, on the I/O thread, with nobody
// calling drain(): the lane wakes an idle I/O thread itself.
TEST(CompletionLaneTest, pushes_from_other_threads_are_each_finished_once_on_the_io_thread) {
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  completion_lane lane(io.get_executor());
  std::thread::id io_thread;
  std::thread runner([&] {
    io_thread = std::this_thread::get_id();
    io.run();
  });
  constexpr int per_thread = 5000;
  std::vector<counted> items(2 * per_thread);
  std::atomic<int> finished{0};
  for (auto& i : items) i.also = [&] { ++finished; };
  {
    std::jthread a([&] {
      for (int k = 0; k < per_thread; ++k) lane.admitted(&items[k]);
    });
    std::jthread b([&] {
      for (int k = per_thread; k < 2 * per_thread; ++k) lane.admitted(&items[k]);
    });
  }
  for (int w = 0; w < 5000 && finished.load() < 2 * per_thread; ++w) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  guard.reset();
  runner.join();
  ASSERT_EQ(finished.load(), 2 * per_thread);
  for (auto& i : items) {
    EXPECT_EQ(i.runs.load(), 1);
    EXPECT_EQ(i.on, io_thread);
  }
}

// A drain on the I/O thread finishes what is listed at once, ahead of the handlers already
// queued there (the point of the lane); an item listed while a drain runs (its run() pushes
// another) is finished by a later drain, not inside the running one.
TEST(CompletionLaneTest, drain_goes_ahead_of_the_queue_and_does_not_nest) {
  asio::io_context io(1);
  completion_lane lane(io.get_executor());
  std::vector<int> order;
  counted first, second;
  bool second_ran_inside_first = false;
  first.also = [&] {
    order.push_back(1);
    lane.admitted(&second);
    lane.drain();  // nested: must not run `second` here
    second_ran_inside_first = second.runs.load() != 0;
  };
  second.also = [&] { order.push_back(2); };
  // Two handlers already queued (ready connections), then a worker finishes `first`: its
  // wake-up goes behind them.
  asio::post(io, [&] { order.push_back(0); });
  asio::post(io, [&] { order.push_back(-1); });
  lane.admitted(&first);
  // The first queued handler runs; then a request is read, which drains first.
  io.run_one();
  lane.drain();
  io.run();
  EXPECT_FALSE(second_ran_inside_first);
  EXPECT_EQ(first.runs.load(), 1);
  EXPECT_EQ(second.runs.load(), 1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, -1, 2}));
}

// A rejection comes back behind what was already queued on its executor, and the admitted
// answers listed meanwhile go first.
TEST(CompletionLaneTest, a_rejection_waits_its_turns_behind_queued_work_and_admitted_answers) {
  asio::io_context io(1);
  completion_lane lane(io.get_executor());
  std::vector<int> order;
  counted refused(io.get_executor()), admitted(io.get_executor());
  refused.also = [&] { order.push_back(9); };
  admitted.also = [&] { order.push_back(1); };
  lane.rejected(&refused);
  for (int i = 0; i < 3; ++i) asio::post(io, [&order] { order.push_back(0); });
  io.run_one();  // the rejection's first turn
  lane.admitted(&admitted);
  io.run();
  EXPECT_EQ(refused.runs.load(), 1);
  EXPECT_EQ(admitted.runs.load(), 1);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.back(), 9);  // after the queued handlers and the admitted answer
  EXPECT_EQ(std::count(order.begin(), order.end(), 0), 3);
}

}  // namespace
}  // namespace stampede
