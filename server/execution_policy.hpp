#pragma once
/// \file The execution-policy seam: how a mode runs one request's work. The front end
/// hands every request to the active policy as a `task`; nothing else branches on the mode.
/// In the order a mode meets them: task_host (what a mode running jobs is told), the task,
/// the limiter every mode admits through, and the policy.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "config/config.hpp"
#include "handlers/work.hpp"
#include "server/admission.hpp"
#include "server/limit_algorithms.hpp"
#include "server/metrics.hpp"

// What a mode that starts tasks as jobs is told when each ends.

namespace stampede {

class task;

/// \brief A mode that keeps track of the tasks it started as jobs: told when each ends,
/// before the task completes (so the task is still alive), on the thread that ended it.
class task_host {
 public:
  virtual void task_ended(task& t) noexcept = 0;

 protected:
  ~task_host() = default;
};

}  // namespace stampede

// One request's work as a mode sees it: a body to run, a stop token, a completion
// called exactly once, and the bookkeeping every mode shares (counts, times, cancellation).

namespace stampede {

using steady = std::chrono::steady_clock;

class task;
class execution_policy;

/// Where and how a policy runs a task's body (task::run).
struct run_env {
  /// How the body waits and fans out (work_context::wait). The body starts as a job on the
  /// calling thread; if none of its waits suspends, it ends there before run() returns,
  /// otherwise on whichever of the mode's threads resumes it last.
  waits* wait = nullptr;
  task_host* host = nullptr;  ///< told when the job ends, before the task completes
  /// The policy running it: where the body's child work goes (work_context::children) and
  /// whose halt it sees (work_context::halt). Null: no child work. Must outlive the run.
  execution_policy* owner = nullptr;
};

/// \brief One request's work as a mode sees it: a body to run, a stop token, and a
/// completion called exactly once. Thread-safety: the state transitions are atomic; a task
/// may be finished on one thread while the front end cancels it on another.
class task : private child_spawner {
 public:
  /// The work, written once as a job (handlers/work.hpp) for every mode.
  using body_fn = std::function<job<response>(const work_context&)>;
  /// Work that never waits through its context (tests).
  using sync_body_fn = std::function<response(const work_context&)>;

  /// `dependency` is what the body's work_context calls (null: a dependency without limit).
  task(body_fn body, mode_kind mode, mode_metrics& m, downstream* dependency = nullptr)
      : body_(std::move(body)), mode_(mode), metrics_(m), dependency_(dependency) {}
  task(sync_body_fn body, mode_kind mode, mode_metrics& m, downstream* dependency = nullptr);
  virtual ~task() = default;
  task(const task&) = delete;
  task& operator=(const task&) = delete;

  /// Called once, on the thread that finishes the task, unless a subclass overrides
  /// completed() (the front end's one allocation per request does).
  std::function<void()> on_done;

  // A policy ends every task with exactly one of run, reject or cancel_queued; each of them
  // calls on_done. A call that loses the race to another returns false and does nothing.

  /// Takes a place in `limit` for this task, given back when the task ends (however it
  /// ends). If there is none: the reason (no place is taken), with which the policy rejects
  /// it. At most one per task.
  const rejection* admit(admission& limit);
  /// The request's criticality, which admission sheds by (CRITICAL unless set before submit).
  void set_criticality(criticality c) { criticality_ = c; }
  criticality criticality_level() const { return criticality_; }
  /// How the task ended, for a limit that learns from it (once it has ended).
  request_end how_it_ended() const;
  /// The policy took the task into a queue (counts it as queued).
  void mark_queued();
  /// Runs the body as `env` says; counts running/started. The task completes on whichever
  /// thread finishes the job (this one, before returning, if the job never suspends), just
  /// after `env.host->task_ended` (also when its client had already left and the body never
  /// starts).
  bool run(const run_env& env = {});
  /// Answers 503 without running, counting `why`, with a Retry-After of `retry_after_s`
  /// seconds (none if negative: retrying cannot help); then completes.
  bool reject(const rejection& why, int retry_after_s = -1);
  /// The client left while queued: completes without running, counting the cancellation.
  bool cancel_queued();
  /// The client left and the task is not (or no longer) in the policy's queue: asks the body
  /// to stop, in whatever state the task is. A task that has not started yet never starts its
  /// body: run() completes it as cancelled (counted as stage queued). Counted once.
  void cancel_running();
  /// Asks a running body to stop without counting a client cancellation (shutdown).
  void request_stop() { stop_.request_stop(); }
  /// Looks (a system call) whether the client has already gone, for a policy that cannot
  /// watch: before handing work over where that is costly to undo (a thread to be scheduled
  /// only to be stopped), or after running it inline. If it has, the front end counts it as
  /// gone since `since` (its work after that is wasted) and this returns true. Called only
  /// inside submit, on the thread that submitted. Without a client to look at: false.
  virtual bool client_already_gone(steady::time_point since) {
    (void)since;
    return false;
  }
  mode_kind mode() const { return mode_; }

  // What happened, for the front end once on_done has been called.
  const response& result() const { return result_; }
  /// Moves the answer out (once, by whoever finishes the task): no copy of the body.
  response take_result() { return std::move(result_); }
  /// Why it was turned away without running (null: it was not).
  const rejection* rejected() const { return rejected_; }
  bool cancelled_in_queue() const { return state_.load() == state::cancelled; }
  int retry_after_s() const { return retry_after_s_; }
  steady::time_point admitted() const { return admitted_; }
  std::optional<steady::time_point> started() const { return started_; }
  std::optional<steady::time_point> finished() const { return finished_; }

  /// Handler time spent after `client_left`, in seconds (0 if it never ran).
  double wasted_after(steady::time_point client_left) const;

 protected:
  /// The task has ended (run, rejected or cancelled): called once, on the thread that ended
  /// it. The default calls on_done.
  virtual void completed() {
    if (on_done) on_done();
  }

 private:
  enum class state { created, queued, running, done, cancelled };
  /// Moves from created or queued to `to`; true if this call did it.
  bool leave_waiting(state to);
  /// Whether the client left before the body started; then ends the task as cancelled.
  bool cancelled_before_start();
  void began();
  void ended();
  void complete();
  static void job_finished(void* self);
  void start_job(waits* w);
  void spawn(child_fn make) override;

  body_fn body_;
  mode_kind mode_;
  mode_metrics& metrics_;
  downstream* dependency_;
  std::atomic<state> state_{state::created};
  std::stop_source stop_;
  std::stop_token halt_;  ///< the owner's halt (children: their parent's)
  execution_policy* owner_ = nullptr;
  response result_;
  const rejection* rejected_ = nullptr;
  int retry_after_s_ = -1;
  steady::time_point admitted_ = steady::now();
  std::optional<steady::time_point> started_;
  std::optional<steady::time_point> finished_;
  std::atomic<bool> cancel_counted_{false};
  std::atomic<bool> client_gone_{false};  ///< set by cancel_running before it stops the body
  work_context context_{};                ///< the job's context (lives as long as it)
  job<response> job_;                     ///< a started body
  task_host* host_ = nullptr;             ///< told when a started body ends
  admission* admitted_by_ = nullptr;      ///< the limit whose place this task holds
  criticality criticality_ = criticality::critical;
  steady::time_point admitted_at_;
};

}  // namespace stampede

// A mode's admission: its own fixed limit (bounded's workers and queue,
// thread_per_request's ceiling, coroutine's max_tasks; blocking has none) and, when
// limiter.algorithm is set, an adaptive limit in front of it that learns from every admitted
// request's time. Every mode admits through one.

namespace stampede {

/// \brief Admits while fewer than the limit hold a place. The adaptive limit refuses with
/// the reason `limit`, the fixed one with the mode's own. Thread-safety: every member may be
/// called from any thread; samples are learnt from one at a time.
class limiter final : public admission {
 public:
  /// `fixed`: the mode's own limit (0: none), which refuses with `when_full` (null for a mode
  /// that has no fixed limit: `fixed` is then none). `m`: where stampede_limit{mode} is published.
  limiter(int fixed, const rejection* when_full, const limiter_settings& s, mode_metrics& m);
  using admission::try_acquire;
  const rejection* try_acquire(criticality c) override;
  void release(std::chrono::steady_clock::duration held, request_end how) override;
  /// The lower of the two limits in force (0: none).
  int limit() const override;
  int in_use() const override { return in_use_.load(std::memory_order_relaxed); }
  /// A lower limit refuses new requests until enough of those admitted have ended.
  void set_fixed(int fixed);
  /// A reload: another algorithm starts again from limiter.initial; the same one keeps the
  /// limit it found, within the new bounds; "none" leaves the fixed limit alone.
  void configure(const limiter_settings& s);
  /// The adaptive limit now (0: none).
  int adaptive() const { return adaptive_.load(std::memory_order_relaxed); }

 private:
  void publish();
  std::atomic<int> fixed_;
  std::atomic<int> adaptive_{0};
  std::atomic<int> in_use_{0};
  /// The percent of the limit each criticality may fill (limiter.*_share; CRITICAL_PLUS: all).
  std::array<std::atomic<int>, criticality_count> share_{};
  mode_metrics& metrics_;
  const rejection* when_full_;
  const rejection& over_limit_;
  const rejection& shed_;
  std::mutex mutex_;                            ///< guards the algorithm
  std::unique_ptr<limit_algorithm> algorithm_;  ///< null: no adaptive limit
  std::string algorithm_name_;                  ///< which one algorithm_ is
};

}  // namespace stampede

namespace stampede {

/// \brief The seam. One implementation per mode, each in server/modes/<mode>.{hpp,cpp}.
/// Thread-safety: submit and client_gone are called from I/O threads concurrently.
class execution_policy {
 public:
  virtual ~execution_policy() = default;
  mode_kind mode() const { return mode_; }
  /// The mode's name, as the answers and the metrics label it (made once, not per request).
  std::string_view name() const { return name_; }
  /// Runs `t` now, later, or rejects it; in every case the task ends through exactly one of
  /// run, reject or cancel_queued, which calls its on_done once, possibly before submit
  /// returns.
  virtual void submit(std::shared_ptr<task> t) = 0;
  /// `t`'s client has gone. A policy that cancels on disconnect removes queued work or stops
  /// running work; one that does not leaves it alone (its time is counted as wasted).
  virtual void client_gone(const std::shared_ptr<task>& t) = 0;
  /// Child work a running task started (work_context::children): wherever this mode runs
  /// its requests' work, subject to the same limits. By default, like a request.
  virtual void submit_child(std::shared_ptr<task> t) { submit(std::move(t)); }
  /// Applies the live-changeable settings of a reloaded config.
  virtual void reconfigure(const config& c) = 0;
  /// Shutdown after the drain period: queued work is rejected (shutting_down), running work is
  /// asked to stop and halted. Later submits are rejected.
  virtual void stop_all() = 0;

  /// Requested when this mode's work must end for the server's sake (stop_all, the policy's
  /// end), not when a client leaves: what ends the labs' waits (work_context::halt).
  std::stop_token halt_token() const { return halt_.get_token(); }

 protected:
  explicit execution_policy(mode_kind mode) : mode_(mode), name_(to_string(mode)) {}
  void halt() { halt_.request_stop(); }

 private:
  mode_kind mode_;
  std::string name_;
  std::stop_source halt_;  ///< one per policy: a task holds a token of it, not a source
};

/// Builds the policy for `c.mode`.
std::unique_ptr<execution_policy> make_policy(const config& c, metrics& m);

}  // namespace stampede
