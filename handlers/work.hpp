#pragma once
/// \file The workloads: a request in, a response out, a stop token checked.
/// Handlers know nothing of sockets, threads or the execution mode; the mode reaches them only
/// through their work_context: the stop token and `waits` (how the mode waits and fans out,
/// blocking a thread or suspending a job). Each workload is written once, as a job, and waits
/// only through the context's primitives. First, the simulated downstream they call (its
/// finite capacity).

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "handlers/job.hpp"
#include "handlers/remote.hpp"

// The simulated dependency every /work/io call and fan-out fetch goes through: a
// database behind a pool of `capacity` connections, or a service with its own concurrency
// limit. Knows nothing of Asio.
//
// What it models: finite capacity. At most `capacity` calls hold a slot at once; a call
// beyond that waits, first come first served, for a slot, then holds it for its duration.
// Unbounded concurrency upstream therefore raises no throughput past capacity / duration:
// it only lengthens this queue. What it leaves out: a real dependency also slows down as it
// gets busier (lock contention, cache misses, its own queueing), fails, and times calls out;
// this one serves every call in exactly its duration once it has a slot.

namespace stampede {

class remote_dependency;

/// \brief A pool of slots with a FIFO wait and cancellable waiting and holding.
/// Thread-safety: every member may be called from any thread at once.
class downstream {
 public:
  /// `capacity` 0 means unlimited (no call ever waits).
  explicit downstream(int capacity = 0) : capacity_(capacity) {}
  downstream(const downstream&) = delete;
  downstream& operator=(const downstream&) = delete;

  /// One call: waits for a slot, holds it for `hold`, frees it. Returns false, having freed
  /// whatever it held, if `stop` is requested while it waits or holds.
  bool call(std::chrono::milliseconds hold, const std::stop_token& stop);

  /// Waits, FIFO, for a slot. Returns false (holding nothing) if `stop` is requested first.
  bool acquire(const std::stop_token& stop);
  /// Takes a slot only if one is free and nobody is waiting (keeps the order fair).
  bool try_acquire();

  /// \brief One call waiting in line without holding a thread (the coroutine mode). The
  /// downstream calls granted() from the thread that frees the slot, under its lock: it must
  /// only hand the waiter on (e.g. post its resumption), never call back into the downstream.
  class waiter {
   public:
    virtual void granted() = 0;

   protected:
    ~waiter() = default;

   private:
    friend class downstream;
    std::list<waiter*>::iterator place_;
    std::chrono::steady_clock::time_point since_;
    bool in_line_ = false;  ///< guarded by the downstream's mutex
  };
  enum class wait_result { granted, waiting, stopped };
  /// Takes a slot at once (granted), puts `w` in line (waiting: w.granted() follows once it
  /// has a slot, unless cancel_wait takes it out first), or refuses (stopped) if `stop` has been
  /// requested. `w` must stay alive while it waits.
  wait_result acquire_or_wait(waiter& w, const std::stop_token& stop);
  /// Takes `w` out of the line; false if it was granted first (it then holds a slot).
  bool cancel_wait(waiter& w);
  /// Frees a slot taken by acquire or try_acquire; hands it to the oldest waiter.
  void release();

  /// Applies a new capacity live (0 = unlimited). A raise lets waiters in at once; a cut
  /// lets calls holding slots finish, and admits no one until in_use is below it.
  void set_capacity(int capacity);

  struct snapshot {
    int capacity = 0;  ///< 0 = unlimited
    int in_use = 0;    ///< calls holding a slot
    int waiting = 0;   ///< calls waiting for one
  };
  snapshot stats() const;

  /// Called with each call's wait for a slot, in seconds (once per granted acquire). Set once,
  /// before the downstream is used.
  std::function<void(double)> on_wait;
  /// The real dependency that calls go to instead of this simulation (downstream.url), with
  /// its own pool; null: simulated. Set once, before the downstream is used.
  remote_dependency* remote = nullptr;

 private:
  struct blocked_waiter;
  bool has_room_locked() const { return capacity_ == 0 || in_use_ < capacity_; }
  void grant_locked();

  mutable std::mutex mutex_;  ///< guards everything below
  int capacity_;
  int in_use_ = 0;
  std::list<waiter*> waiters_;  ///< oldest first; each lives on its caller's stack
};

}  // namespace stampede

namespace stampede {

/// The endpoints. `lab` is every /lab/* endpoint (which one: work_params::lab). `other` labels
/// requests that matched none (404/405/400 on the path).
enum class handler_id { io, cpu, fanout, healthz, lab, other };
inline constexpr int handler_count = 6;
std::string_view to_string(handler_id h);

/// How much a request matters when the server must turn some away, as the SRE book defines
/// it, lowest first: under overload, admission sheds the lowest first (limiter.*_share).
enum class criticality : std::uint8_t { sheddable, sheddable_plus, critical, critical_plus };
inline constexpr int criticality_count = 4;
/// SHEDDABLE, SHEDDABLE_PLUS, CRITICAL, CRITICAL_PLUS: the names the header carries.
std::string_view to_string(criticality c);

/// The failure labs (handlers/labs/): /lab/counter, /lab/reserve, /lab/leak, /lab/transfer,
/// /lab/nested, /lab/lock, /lab/cpu_fanout, /lab/cache.
enum class lab_kind : std::uint8_t {
  counter,
  reserve,
  leak,
  transfer,
  nested,
  lock,
  cpu_fanout,
  cache
};
inline constexpr lab_kind all_labs[] = {lab_kind::counter,    lab_kind::reserve, lab_kind::leak,
                                        lab_kind::transfer,   lab_kind::nested,  lab_kind::lock,
                                        lab_kind::cpu_fanout, lab_kind::cache};

/// Validated parameters of one request.
struct work_params {
  int ms = 0;             ///< /work/io, /work/cpu, /work/fanout: milliseconds per unit of work
  int n = 1;              ///< /work/fanout: number of fetches; /lab/*: K
  bool parallel = false;  ///< /work/fanout: fetch in parallel
  int kb = -1;            ///< /work/*: working set in KiB held while the request runs;
                          ///< -1 until the front end applies work.request_kb
  // Bytes: every waiting request holds its parameters twice (its body, its frame).
  lab_kind lab = lab_kind::counter;  ///< /lab/*: which lab
  std::uint8_t variant = 0;          ///< /lab/*: 0 is the unsafe variant; the fixed ones follow
  std::uint8_t from = 0;             ///< /lab/transfer: account index (a = 0 … d = 3)
  std::uint8_t to = 0;
  criticality crit = criticality::critical;  ///< X-Stampede-Criticality; CRITICAL if absent
  /// The caller's deadline (X-Stampede-Deadline-Ms); the clock's epoch: none.
  std::chrono::steady_clock::time_point deadline{};
};

/// What a handler answers. The front end turns it into HTTP.
struct response {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class downstream;
struct work_context;
struct slot_awaiter;
struct remote_call;

/// \brief How a mode's work waits and fans out, given to it by the mode's policy. Each wait
/// either ends on the calling thread, blocking it (the call returns false: the job goes on at
/// once), or suspends the job and resumes it later on the mode's threads (true). A handler
/// waits only through these, and never learns which it got.
/// Thread-safety: every member may be called from any thread.
class waits {
 public:
  /// Waits `d`, or until `stop`; `*finished` is set before `h` goes on, true only if the
  /// whole of `d` passed.
  virtual bool sleep(std::chrono::milliseconds d, const std::stop_token& stop,
                     std::coroutine_handle<> h, bool* finished) = 0;
  /// Lets other work that shares this thread have its turn (a thread has none: no wait).
  virtual bool yield(std::coroutine_handle<> h) = 0;
  /// A real interleaving point between two steps of a lab's work: the thread gives up the
  /// CPU, or the task its thread.
  virtual bool interleave(std::coroutine_handle<> h) = 0;
  /// Waits in line for a slot of `a.ctx.dependency`; `a.ok` is set before `a.h` goes on.
  virtual bool acquire_slot(slot_awaiter& a) = 0;
  /// One call to a remote dependency; `c.outcome` is set before `c.h` goes on.
  virtual bool call_remote(remote_call& c) = 0;
  /// Goes on with `h` on the mode's threads: what a wait that ended elsewhere calls.
  virtual void resume(std::coroutine_handle<> h) = 0;
  /// Makes `count` calls of `each` to the context's dependency, as many at once as the mode
  /// allows; returns how many succeeded. A remote call's failure stops the rest and is told
  /// in `*failure`; `deadline` is the caller's, for remote calls.
  virtual job<int> fan_out(int count, std::chrono::milliseconds each, const work_context& ctx,
                           std::chrono::steady_clock::time_point deadline,
                           call_outcome* failure) = 0;

 protected:
  ~waits() = default;
};

class labs;

/// \brief How a mode runs child work that a request starts and does not wait for in line
/// (the labs' helpers and nested children): wherever the mode runs its requests' work. The
/// child gets a context of its own. Thread-safety: spawn may be called from any thread.
class child_spawner {
 public:
  using child_fn = std::function<job<void>(const work_context&)>;
  /// Hands `make` to the mode. The mode may refuse or drop the child without ever calling it
  /// (a full queue, shutdown): a caller learns that from what `make` owns being destroyed.
  virtual void spawn(child_fn make) = 0;

 protected:
  ~child_spawner() = default;
};

struct sleep_awaiter;
struct yield_awaiter;

/// What a running handler may use besides its parameters, and how it waits: each wait is an
/// awaitable that goes through `wait`, the mode's.
struct work_context {
  std::stop_token stop;              ///< set when the work should give up (client left, shutdown)
  waits* wait;                       ///< how the mode waits and fans out (never null)
  std::string_view mode;             ///< for the response body only
  downstream* dependency = nullptr;  ///< what /work/io and fetches call; null: unlimited
  /// Requested only when the work must end for the server's sake (shutdown, the mode's end),
  /// not when a client leaves: what ends a lab's wait that a client's leaving cannot.
  std::stop_token halt = {};
  child_spawner* children = nullptr;  ///< null: the work cannot start child work

  /// `co_await ctx.sleep_for(d)`: true if `d` passed, false if stopped first.
  sleep_awaiter sleep_for(std::chrono::milliseconds d) const;
  /// `co_await ctx.yield()`: lets the other tasks of a coroutine thread run (no-op otherwise).
  yield_awaiter yield() const;
  /// `co_await ctx.acquire_slot()`: waits in line for a slot of the dependency (which must be
  /// set); false, holding nothing, if stopped first. The slot is freed with release().
  slot_awaiter acquire_slot() const;
};

struct sleep_awaiter {
  const work_context& ctx;
  std::chrono::milliseconds d;
  bool finished = false;
  bool await_ready();
  bool await_suspend(std::coroutine_handle<> h) {
    return ctx.wait->sleep(d, ctx.stop, h, &finished);
  }
  bool await_resume() const noexcept { return finished; }
};

struct yield_awaiter {
  const work_context& ctx;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return ctx.wait->yield(h); }
  void await_resume() const noexcept {}
};

/// Waits for a dependency slot (a downstream::waiter while it waits in line without a thread).
struct slot_awaiter final : downstream::waiter {
  explicit slot_awaiter(const work_context& c) : ctx(c) {}
  slot_awaiter(const slot_awaiter&) = delete;
  slot_awaiter& operator=(const slot_awaiter&) = delete;
  ~slot_awaiter() = default;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiting) {
    h = awaiting;
    return ctx.wait->acquire_slot(*this);
  }
  bool await_resume() noexcept {
    on_stop.reset();  // waits for a stop callback still running on another thread
    return ok;
  }
  void granted() override;

  struct stop_fn {
    slot_awaiter* self;
    void operator()() const noexcept;
  };
  const work_context& ctx;
  std::coroutine_handle<> h;
  bool ok = false;
  std::optional<std::stop_callback<stop_fn>> on_stop;
};

inline sleep_awaiter work_context::sleep_for(std::chrono::milliseconds d) const {
  return sleep_awaiter{*this, d};
}
inline yield_awaiter work_context::yield() const {
  return yield_awaiter{*this};
}
inline slot_awaiter work_context::acquire_slot() const {
  return slot_awaiter{*this};
}

/// \brief Memory a request holds while it runs: `kb` KiB, every page written, as a real
/// request holds its buffers and decoded payload. Counted in request_memory_bytes() while
/// alive. Throws std::bad_alloc if the memory cannot be had.
class working_set {
 public:
  explicit working_set(int kb);
  ~working_set();
  working_set(const working_set&) = delete;
  working_set& operator=(const working_set&) = delete;

 private:
  char* data_;
  std::size_t bytes_;
};

/// Bytes held by live working sets in this process.
std::int64_t request_memory_bytes();
/// Requests answered 503 no_memory because their working set could not be allocated.
std::int64_t request_memory_failures();
/// Work not started because its caller's deadline (X-Stampede-Deadline-Ms) had passed.
std::int64_t deadline_skips();

/// Simulated blocking I/O: holds the calling thread for `d`, returning early (false) if
/// `stop` is requested.
bool simulated_io(std::chrono::milliseconds d, const std::stop_token& stop);

/// CPU-bound work: spins until the calling thread has used `d` of CPU time, checking `stop`
/// at least every millisecond. Returns false if stopped early.
bool burn_cpu(std::chrono::milliseconds d, const std::stop_token& stop);

/// The handler `h` with `p`, as a job. Never throws; a cancelled run answers "cancelled".
/// `ctx` (and `lab`, which the /lab/* endpoints need) must outlive the job.
job<response> handle(handler_id h, work_params p, const work_context& ctx, labs* lab = nullptr);

/// Runs the handler `h` with `p` on the calling thread to its end (ctx's waits must block).
response run_handler(handler_id h, const work_params& p, const work_context& ctx);

/// One call to the dependency (or, without one, a wait of `d`), remote when it has a remote:
/// ok, cancelled if stopped first, or how the remote call failed. `deadline`: the caller's.
job<call_outcome> call_dependency(std::chrono::milliseconds d, const work_context& ctx,
                                  std::chrono::steady_clock::time_point deadline = {});

/// A failed remote call as the caller's answer (the one place that maps them): a timeout is
/// 504, a refused connection or a 503 is 503 with Retry-After, a lost or bad answer is 502.
response downstream_failure(call_outcome o, std::string_view mode);

/// Every error answer (every status but 2xx), built here only:
/// {"error": message, "status": status, "reason": reason, "mode": mode}. `reason` is a
/// machine-readable word (snake_case), `mode` the mode the request met (the active one).
response error_response(int status, std::string_view message, std::string_view reason,
                        std::string_view mode);

}  // namespace stampede
