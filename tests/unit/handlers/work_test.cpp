#include "handlers/work.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>

#include <thread>

#include "server/modes/thread_waits.hpp"

namespace stampede {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::chrono::nanoseconds thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

job<int> one() {
  co_return 1;
}

job<int> many_awaits(int n) {
  int sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await one();
  co_return sum;
}

TEST(JobTest, a_loop_of_awaits_that_end_at_once_does_not_grow_the_stack) {
  // 200,000 awaits in a loop on a thread of 256 KiB: a stack frame kept per await (a
  // resumption that is not a tail call, as in GCC's sanitizer builds) would overflow it.
  int got = 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, &attr,
                [](void* out) -> void* {
                  *static_cast<int*>(out) = many_awaits(200000).run_inline();
                  return nullptr;
                },
                &got),
            0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_EQ(got, 200000);
}

TEST(WorkTest, simulated_io_waits_its_time) {
  std::stop_source never;
  auto start = clock_type::now();
  EXPECT_TRUE(simulated_io(30ms, never.get_token()));
  EXPECT_GE(clock_type::now() - start, 30ms);
}

TEST(WorkTest, simulated_io_returns_when_stopped) {
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  auto start = clock_type::now();
  EXPECT_FALSE(simulated_io(60s, stop.get_token()));
  EXPECT_LT(clock_type::now() - start, 30s);  // far below the 60 s asked for
}

TEST(WorkTest, burn_cpu_uses_thread_cpu_time) {
  std::stop_source never;
  auto before = thread_cpu();
  EXPECT_TRUE(burn_cpu(20ms, never.get_token()));
  EXPECT_GE(thread_cpu() - before, 20ms);
}

TEST(WorkTest, burn_cpu_stops_when_asked) {
  // Asked while it burns, not before: the check inside the loop is what is tested.
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  auto start = clock_type::now();
  EXPECT_FALSE(burn_cpu(60s, stop.get_token()));
  EXPECT_GE(clock_type::now() - start, 15ms);
  EXPECT_LT(clock_type::now() - start, 30s);
}

TEST(WorkTest, io_handler_waits_for_the_downstream) {
  downstream d(1);
  std::stop_source never;
  ASSERT_TRUE(d.try_acquire());    // the only slot is taken
  auto start = clock_type::now();  // before the freer starts its 50 ms
  std::jthread freer([&] {
    std::this_thread::sleep_for(50ms);
    d.release();
  });
  thread_waits waits(0);
  work_context ctx{never.get_token(), &waits, "test", &d};
  auto r = run_handler(handler_id::io, work_params{10, 1, false, 0}, ctx);
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(clock_type::now() - start, 60ms);  // 50 ms in line, then 10 ms of holding
}

TEST(WorkTest, working_set_is_counted_while_alive) {
  auto before = request_memory_bytes();
  {
    working_set w(256);
    EXPECT_EQ(request_memory_bytes() - before, 256 * 1024);
  }
  EXPECT_EQ(request_memory_bytes(), before);
}

TEST(WorkTest, handler_holds_its_working_set_while_it_runs) {
  std::stop_source never;
  auto before = request_memory_bytes();
  std::atomic<std::int64_t> seen{0};
  std::jthread watcher([&] {
    for (int i = 0; i < 200 && seen.load() == 0; ++i) {
      seen = request_memory_bytes() - before;
      std::this_thread::sleep_for(1ms);
    }
  });
  thread_waits waits(0);
  auto r = run_handler(handler_id::io, work_params{100, 1, false, 128},
                       work_context{never.get_token(), &waits, "test"});
  watcher.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"kb\":128"), std::string::npos);
  EXPECT_EQ(seen.load(), 128 * 1024);
  EXPECT_EQ(request_memory_bytes(), before);
}

TEST(WorkTest, handler_reports_cancellation) {
  // Stopped while it waits: a client that left (cancelled), then the server's halt.
  for (bool halted : {false, true}) {
    std::stop_source stop;
    std::stop_source halt;
    std::jthread stopper([&] {
      std::this_thread::sleep_for(20ms);
      if (halted) halt.request_stop();
      stop.request_stop();
    });
    auto start = clock_type::now();
    thread_waits waits(0);
    work_context ctx{stop.get_token(), &waits, "test"};
    ctx.halt = halt.get_token();
    auto r = run_handler(handler_id::io, work_params{10000, 1, false}, ctx);
    EXPECT_LT(clock_type::now() - start, 5s);
    EXPECT_EQ(r.status, 503);
    auto reason = halted ? "\"reason\":\"shutting_down\"" : "\"reason\":\"cancelled\"";
    EXPECT_NE(r.body.find(reason), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"mode\":\"test\""), std::string::npos) << r.body;
  }
}

TEST(WorkTest, handler_body_names_mode_and_handler) {
  std::stop_source never;
  thread_waits waits(0);
  auto r = run_handler(handler_id::healthz, {}, work_context{never.get_token(), &waits, "bounded"});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"mode\":\"bounded\""), std::string::npos);
  EXPECT_NE(r.body.find("\"handler\":\"healthz\""), std::string::npos);
}

}  // namespace
}  // namespace stampede
