#pragma once
//! The blocking pool: an elastic set of threads that run `spawn_blocking` closures, one closure
//! per thread at a time (Tokio's `runtime/blocking/pool.rs`), plus a file lane: short blocking
//! jobs (the `eddy::fs` operations that run here) that a few of the same threads run back to
//! back (libuv's idea).
//!
//! Owns: two FIFOs of queued blocking tasks (general closures, file-lane jobs), the threads
//! (started on demand, at most `max_threads`; an idle thread exits after `keep_alive` without
//! work) and their os_thread handles until they are joined. Every field below `mutex_` is guarded
//! by it; the three metric atomics mirror the guarded counters for lock-free readers.
//!
//! Threads: `spawn`, `spawn_file`, `schedule` and the metric accessors may be called from any
//! thread; `shutdown` from any thread that is not one of this pool's threads (it would wait for
//! itself). Pool threads set `context().blocking = this` (so `spawn_blocking` nests) and
//! `context().runtime` to the owning runtime (so `eddy::spawn` works in a closure), and run tasks
//! with the generic `run_task`. They do not set `context().sched`: they own no scheduler queue.
//!
//! A blocking task is polled exactly once: its coroutine (spawn_blocking.hpp) runs the closure
//! and finishes without suspending. So a task is only ever queued (NOTIFIED), running, or
//! complete, never idle; shutdown needs no owned-task list, and an abort either finds it queued
//! (the poll sees CANCELLED and cancels it) or running (it cannot be interrupted: it finishes and
//! the join handle gets its value, as in Tokio). File-lane jobs are blocking tasks too: all of
//! this holds for them.
//!
//! Why a lane: with one thread per closure, 64 file reads in flight grow the pool to 64 threads
//! and every submit wakes one (a futex wake, then 64 runnable threads time-slicing the cores).
//! A file operation is short, so at most `max_file_threads` threads take file jobs, and a thread
//! that finishes one takes the next without sleeping or being signalled: in steady state a
//! submit only queues. Measured on `file_read` (bench/suite: 1,000 files of 64 KiB, 64 in flight,
//! 2 workers on 2 cores): 2.4 context switches per file before, 0.4 with the lane.
//!
//! The lane's slots (`file_slots_` <= `max_file_threads`, all under `mutex_`):
//! - A slot is held by a thread that takes file jobs, or reserved for one that will: an idle
//!   thread signalled with a unit of `num_notify_file_` (rather than `num_notify_`), or a thread
//!   started for the lane. `spawn_file` queues the job and reserves a slot only when one is free
//!   (`add_file_thread_locked`); with every slot taken it signals nobody.
//! - A holder gives its slot back only when the file queue is empty (in the same critical section
//!   in which it then goes idle or takes general work) or to take general work (below, handing
//!   the slot on if a thread is free), so a job queued while every slot is taken is run by a
//!   holder once its current job finishes: it never waits for a wake-up. Lane jobs must not wait
//!   for other lane jobs (every slot could be taken by such waiters); eddy's own fs closures
//!   are the only ones.
//! - Fairness (`next_task_locked`): general closures still get a thread of their own up to
//!   `max_threads`; general work queues for nobody only at that cap (work that a signalled or
//!   starting thread will take, `num_notify_` + `num_starting_`, does not count), and then a
//!   holder leaves the lane to take it, and a thread without a slot alternates between the two
//!   queues. Neither kind starves the other.
//!
//! Idle accounting (Tokio's protocol; all under `mutex_`):
//! - `num_idle_` counts threads waiting for work that nobody has claimed yet. A submit claims one
//!   by moving a unit from `num_idle_` to `num_notify_` (general) or `num_notify_file_` (file
//!   lane, with a slot reserved) and signalling; whichever idle thread next sees a unit consumes
//!   it and goes looking for work (holding the slot, for a file unit).
//! - An idle thread decides to exit (keep-alive expired) only with the lock held and no unit of
//!   either kind left, removing itself from `num_idle_` in the same critical section. A submit
//!   therefore either saw it idle and left a unit it will consume, or saw it gone and started a
//!   thread or left the task to a busy thread, which checks both queues before going idle (a
//!   file job when a slot is free). Queued work is never stranded with an exiting thread.
//! - Invariant outside shutdown: `num_threads_ == 0` implies both queues are empty.
//!
//! Joining: a thread that exits on keep-alive removes its handle from `workers_`, puts it in
//! `last_exiting_` and joins the previous occupant after unlocking, so at most one exited thread
//! is left unjoined at a time. Threads that exit because of shutdown leave their handle in
//! `workers_`. `shutdown` waits until `num_threads_ == 0`, then joins `workers_` and
//! `last_exiting_`; joins are transitive, so every thread the pool ever started is joined.
//!
//! Lifetime: reference counted like every scheduler (the owner and every task hold one). The
//! owner calls `shutdown` before dropping its reference. Dropping it without shutdown is only
//! allowed once no task is left (else the last reference could go on a pool thread, which cannot
//! join itself); the destructor then joins the idle threads.
//!
//! Shutdown, in order (idempotent):
//!  1. close: later `spawn`s and `spawn_file`s cancel their task on the spot; threads stop taking
//!     queued work;
//!  2. wake every idle thread, so it exits;
//!  3. cancel every queued task of both queues that has not started (its join handle reports
//!     `cancelled`);
//!  4. wait for running tasks to finish (they cannot be interrupted) and for every thread to exit;
//!  5. join every thread.

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/runtime_options.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/task_queue.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/raw_task.hpp>
#include <eddy/detail/util/os_thread.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <limits.h>

namespace eddy::detail {

/// Settings of a blocking pool (filled from `runtime_options` by `blocking_options_from`).
struct blocking_options {
    /// Upper bound on the pool's threads; at least 1.
    std::size_t max_threads = 512;
    /// Upper bound on the threads that run file-lane jobs at once (see the module comment); at
    /// least 1. The lane's threads count towards `max_threads`.
    std::size_t max_file_threads = 4;
    /// How long an idle thread waits for work before it exits.
    std::chrono::nanoseconds keep_alive = std::chrono::seconds(10);
    /// Thread name (`pthread_setname_np`), truncated to 15 bytes.
    std::string thread_name = "eddy-blocking";
    /// Stack size in bytes; 0 keeps the default. Below PTHREAD_STACK_MIN no thread can start.
    std::size_t stack_size = 0;
    /// Run on each pool thread when it starts and before it exits. Must not throw.
    std::function<void()> on_thread_start;
    std::function<void()> on_thread_stop;
    /// Receives the exception of a detached blocking task that threw. Called on a pool thread.
    unhandled_exception_hook unhandled_exception;
};

/// The file lane's default cap: one thread per worker thread, and at least 4. On `file_read`
/// (bench/suite: 2 workers on 2 cores, 64 reads in flight) caps of 2, 4 and 8 came out within
/// noise of each other, 4 slightly ahead; the floor leaves room for operations that wait for the
/// device rather than copy from the page cache.
inline std::size_t default_max_file_threads(const runtime_options& o) noexcept {
    const std::size_t workers =
        o.worker_threads != 0 ? o.worker_threads : std::thread::hardware_concurrency();
    return std::max<std::size_t>(4, workers);
}

/// The blocking-pool part of a runtime's settings (an empty thread name keeps the pool's default).
inline blocking_options blocking_options_from(const runtime_options& o) {
    blocking_options b;
    b.max_threads = o.max_blocking_threads;
    b.max_file_threads = o.max_file_threads != 0 ? o.max_file_threads : default_max_file_threads(o);
    b.keep_alive = o.thread_keep_alive;
    if (!o.thread_name.empty())
        b.thread_name = o.thread_name;
    b.stack_size = o.thread_stack_size;
    b.on_thread_start = o.on_thread_start;
    b.on_thread_stop = o.on_thread_stop;
    b.unhandled_exception = o.unhandled_exception;
    return b;
}

class blocking_pool;

/// The pool whose thread this is (null on every other thread). Distinct from
/// `context().blocking`, which runtime threads set too.
inline thread_local const blocking_pool* tls_blocking_pool_thread = nullptr;

class blocking_pool final : public scheduler {
public:
    /// Starts no thread: threads start on demand. Construct with `new` (reference counted).
    /// `owner` is the runtime whose `spawn` closures may call (set as `context().runtime` on the
    /// pool's threads); it outlives the pool's threads.
    explicit blocking_pool(blocking_options options, runtime_core* owner = nullptr)
        : options_(std::move(options)), owner_(owner) {
        EDDY_ASSERT(options_.max_threads >= 1);
        EDDY_ASSERT(options_.max_file_threads >= 1);
        options_.keep_alive = std::max(options_.keep_alive, std::chrono::nanoseconds::zero());
    }

    /// Queues a freshly spawned task; starts a thread if none is idle and the cap allows. After
    /// shutdown, cancels the task on the calling thread instead.
    void spawn(task_header* t) noexcept override { submit(t); }

    /// Queues a freshly spawned file-lane job (see the module comment): a short blocking job run
    /// by at most `max_file_threads` threads at a time, back to back. After shutdown, cancels the
    /// task on the calling thread instead.
    void spawn_file(task_header* t) noexcept { submit_file(t); }

    /// Only reached by `abort_task` for a task that is neither queued nor running, which a
    /// blocking task never is (see the module comment); handled like a spawn for robustness.
    void schedule(task_header* t, schedule_hint /*hint*/) noexcept override { submit(t); }

    /// A blocking task is never idle: this only cancels one still queued (whose entry the pool
    /// then drops when it pops it).
    bool cancel_here(task_header* t) noexcept override { return shutdown_task(t, *this); }

    /// See the module comment. Never from one of this pool's threads (aborts with a message).
    void shutdown() noexcept {
        if (is_pool_thread()) {
            std::fputs("eddy: a blocking pool cannot be shut down from one of its own threads "
                       "(a runtime must not be destroyed from a spawn_blocking closure)\n",
                       stderr);
            std::abort();
        }
        task_queue queued;
        std::unique_lock lock(mutex_);
        if (shutdown_started_) {
            // Another call did (or is doing) the work; return once it is done.
            shutdown_cv_.wait(lock, [this] { return joined_; });
            return;
        }
        // 1.-2.
        shutdown_started_ = true;
        closed_ = true;
        while (task_header* t = queue_.pop_front())
            queued.push_back(t);
        task_queue queued_files = std::move(file_queue_);
        publish_metrics_locked();
        work_cv_.notify_all();
        lock.unlock();

        // 3. Outside the lock: cancelling runs the closures' destructors, which may spawn.
        for (task_queue* q : {&queued, &queued_files}) {
            while (task_header* t = q->pop_front()) {
                shutdown_task(t, *this);
                release_task(t); // the queue entry's reference
            }
        }

        // 4.
        lock.lock();
        shutdown_cv_.wait(lock, [this] { return num_threads_ == 0; });
        std::vector<os_thread> threads = std::move(workers_);
        workers_.clear();
        os_thread last = std::move(last_exiting_);
        lock.unlock();

        // 5.
        for (os_thread& th : threads)
            th.join();
        last.join();

        lock.lock();
        joined_ = true;
        shutdown_cv_.notify_all();
    }

    /// True on the threads of this pool.
    [[nodiscard]] bool is_pool_thread() const noexcept { return tls_blocking_pool_thread == this; }

    // The interface run_task needs. A blocking task never suspends, so it is never idle and
    // shutdown never has to find it: no owned-task list (see the module comment).
    void bind(task_header* /*t*/) noexcept {}
    void unbind(task_header* /*t*/) noexcept {}
    void unhandled_exception(task_header* t, std::exception_ptr e) noexcept override {
        if (options_.unhandled_exception)
            options_.unhandled_exception(task_id{t->id()}, std::move(e));
    }

    // Metrics: any thread, wait-free, possibly stale by the time they return.
    // ORDERING: relaxed everywhere: the values are statistics, written under `mutex_`.

    /// Threads alive (busy or idle).
    [[nodiscard]] std::size_t thread_count() const noexcept {
        return thread_count_.load(memory_order_relaxed);
    }
    /// Threads waiting for work.
    [[nodiscard]] std::size_t idle_thread_count() const noexcept {
        return idle_count_.load(memory_order_relaxed);
    }
    /// Closures queued or running (approximate: from the published counters).
    [[nodiscard]] bool busy() const noexcept {
        return queue_depth() != 0 || thread_count() > idle_thread_count();
    }
    /// Tasks queued that no thread has started yet.
    [[nodiscard]] std::size_t queue_depth() const noexcept {
        return queue_depth_.load(memory_order_relaxed);
    }

    [[nodiscard]] const blocking_options& options() const noexcept { return options_; }

private:
    ~blocking_pool() override {
        // The owner normally shut the pool down before its last reference went. If not, no task
        // is left (each holds a reference), so this only stops and joins idle threads.
        {
            std::lock_guard lock(mutex_);
            if (joined_)
                return;
        }
        shutdown();
    }

    void submit(task_header* t) noexcept {
        std::unique_lock lock(mutex_);
        if (cancel_if_closed(lock, t))
            return;
        queue_.push_back(t);
        if (num_idle_ > 0) {
            --num_idle_;
            ++num_notify_;
            work_cv_.notify_one();
        } else if (num_threads_ < options_.max_threads) {
            const int err = start_thread_locked();
            if (err != 0 && num_threads_ == 0) {
                // No thread exists to run it, so (by the invariant) it is the only entry.
                EDDY_ASSERT(queue_.size() == 1);
                cancel_unstartable(lock, queue_, t, err, "blocking task");
                return;
            }
            // With other threads alive, the task waits for one of them (as in Tokio).
        }
        publish_metrics_locked();
    }

    void submit_file(task_header* t) noexcept {
        std::unique_lock lock(mutex_);
        if (cancel_if_closed(lock, t))
            return;
        file_queue_.push_back(t);
        const int err = add_file_thread_locked();
        if (err != 0 && num_threads_ == 0) {
            // No thread exists to run it, so (by the invariant) it is the only entry.
            EDDY_ASSERT(file_queue_.size() == 1 && queue_.empty());
            cancel_unstartable(lock, file_queue_, t, err, "file operation");
            return;
        }
        publish_metrics_locked();
    }

    /// After shutdown: cancels `t` on the calling thread instead of queueing it, releasing
    /// `lock`, and returns true.
    bool cancel_if_closed(std::unique_lock<std::mutex>& lock, task_header* t) noexcept {
        if (!closed_)
            return false;
        lock.unlock();
        shutdown_task(t, *this);
        release_task(t); // the queue entry's reference: it will never be queued
        return true;
    }

    /// No thread could start (`err`) and none exists: takes `t`, the only entry, back out of
    /// `queue`, says so on stderr and cancels it. Releases `lock`.
    void cancel_unstartable(std::unique_lock<std::mutex>& lock, task_queue& queue, task_header* t,
                            int err, const char* what) noexcept {
        task_header* only = queue.pop_front();
        EDDY_ASSERT(only == t);
        publish_metrics_locked();
        lock.unlock();
        std::fprintf(stderr,
                     "eddy: blocking pool could not start a thread (%s); the %s is cancelled\n",
                     std::strerror(err), what);
        shutdown_task(only, *this);
        release_task(only);
    }

    /// Gives the file lane one more thread if it has queued jobs and a free slot: an idle thread
    /// (signalled with a file unit) or a new one, which takes the slot reserved here. With every
    /// thread busy and the cap reached, does nothing: each busy thread looks at the lane before
    /// it goes idle. Returns 0 or the errno of a thread that could not start.
    int add_file_thread_locked() noexcept {
        if (file_queue_.empty() || file_slots_ >= options_.max_file_threads)
            return 0;
        if (num_idle_ > 0) {
            --num_idle_;
            ++num_notify_file_;
            ++file_slots_;
            work_cv_.notify_one();
        } else if (num_threads_ < options_.max_threads) {
            if (const int err = start_thread_locked(true); err != 0)
                return err;
            ++file_slots_;
        }
        return 0;
    }

    /// What a pool thread carries from one job to the next.
    struct thread_state {
        bool file_slot = false;   ///< holds a file-lane slot (counted in `file_slots_`)
        bool ran_general = false; ///< its last job was general work (reset when it goes idle)
    };

    /// The next job for a pool thread, or null (the lock is held); updates `s` as the thread
    /// takes or gives up a file-lane slot.
    ///
    /// A slot holder takes file jobs back to back while there are any, except that general work
    /// no thread is on its way to comes first: that is only queued when no thread was free (the
    /// cap is reached), and a lane that keeps being refilled must not keep it waiting. A thread
    /// without a slot takes general work first, unless its last job was general and file jobs wait
    /// for a free slot: with both queues backed up, each thread alternates, so neither starves.
    task_header* next_task_locked(thread_state& s) noexcept {
        if (s.file_slot) {
            // General work that a signalled or starting thread will take is not waiting.
            if (queue_.size() <= num_notify_ + num_starting_) {
                if (task_header* t = file_queue_.pop_front())
                    return t;
            }
            s.file_slot = false;
            --file_slots_;
            if (!file_queue_.empty()) {
                // The lane lost a thread to general work: replace it if one is free.
                (void)add_file_thread_locked();
            }
        }
        const bool file_slot_free = !file_queue_.empty() && file_slots_ < options_.max_file_threads;
        if (!(s.ran_general && file_slot_free)) {
            if (task_header* t = queue_.pop_front()) {
                s.ran_general = true;
                return t;
            }
        }
        if (file_slot_free) {
            s.file_slot = true;
            s.ran_general = false;
            ++file_slots_;
            return file_queue_.pop_front();
        }
        return nullptr;
    }

    /// Starts one thread (the lock is held, so it cannot look at the queue before we are done),
    /// holding a file-lane slot the caller reserved if `file_slot`. Returns 0 or an errno value.
    int start_thread_locked(bool file_slot = false) noexcept {
        try {
            if (workers_.size() == workers_.capacity())
                workers_.reserve(std::max<std::size_t>(8, 2 * workers_.capacity()));
            workers_.emplace_back(options_.thread_name, options_.stack_size,
                                  [this, file_slot] { run_thread(file_slot); });
        } catch (const std::system_error& e) {
            return e.code().value();
        } catch (...) {
            return ENOMEM;
        }
        ++num_threads_;
        if (!file_slot)
            ++num_starting_;
        return 0;
    }

    void run_thread(bool file_slot) noexcept {
        thread_state state{.file_slot = file_slot};
        tls_blocking_pool_thread = this;
        thread_context& ctx = context();
        ctx.blocking = this;
        ctx.runtime = owner_;
        if (options_.on_thread_start)
            options_.on_thread_start(); // a throw terminates (noexcept), as with std::thread

        os_thread previous; // the thread that retired before us, joined once we are done
        std::unique_lock lock(mutex_);
        if (!file_slot)
            --num_starting_; // started by `submit`: from here on we look at the queues
        for (;;) {
            // Busy: run queued tasks, oldest first (see `next_task_locked` for the two queues).
            while (!closed_) {
                task_header* t = next_task_locked(state);
                if (t == nullptr)
                    break;
                publish_metrics_locked();
                lock.unlock();
                run_task(t, *this);
                lock.lock();
            }
            if (closed_)
                break;

            // Idle: wait for a unit of `num_notify_` or `num_notify_file_`, shutdown, or the
            // keep-alive to expire.
            state.ran_general = false;
            ++num_idle_;
            publish_metrics_locked();
            const auto deadline = deadline_after(options_.keep_alive);
            bool timed_out = false;
            bool exiting = false;
            for (;;) {
                // A submit already took us out of num_idle_ for either kind of unit.
                if (num_notify_file_ > 0) {
                    // ... and reserved a file-lane slot for us.
                    --num_notify_file_;
                    state.file_slot = true;
                    break;
                }
                if (num_notify_ > 0) {
                    --num_notify_;
                    break;
                }
                if (closed_ || timed_out) {
                    --num_idle_;
                    exiting = true;
                    break;
                }
                if (deadline) {
                    timed_out = work_cv_.wait_until(lock, *deadline) == std::cv_status::timeout;
                } else {
                    work_cv_.wait(lock);
                }
            }
            if (exiting) {
                if (!closed_) {
                    // Keep-alive expired: hand our handle to the next exiting thread (or to
                    // shutdown) and take the previous one's to join.
                    previous = retire_self_locked();
                }
                break;
            }
        }
        if (state.file_slot)
            --file_slots_; // only when closed: the lane is empty and nobody will refill it
        --num_threads_;
        publish_metrics_locked();
        if (closed_ && num_threads_ == 0)
            shutdown_cv_.notify_all();
        lock.unlock();

        if (options_.on_thread_stop)
            options_.on_thread_stop();
        ctx.blocking = nullptr;
        ctx.runtime = nullptr;
        tls_blocking_pool_thread = nullptr;
        previous.join();
    }

    /// Moves this thread's handle out of `workers_` into `last_exiting_` and returns the
    /// previous occupant, for the caller to join.
    os_thread retire_self_locked() noexcept {
        auto it = std::find_if(workers_.begin(), workers_.end(),
                               [](const os_thread& th) { return th.is_current(); });
        EDDY_ASSERT(it != workers_.end());
        os_thread self = std::move(*it);
        *it = std::move(workers_.back());
        workers_.pop_back();
        return std::exchange(last_exiting_, std::move(self));
    }

    using clock = std::chrono::steady_clock;

    /// Empty for a keep-alive too long to represent: wait without a deadline.
    static std::optional<clock::time_point> deadline_after(std::chrono::nanoseconds d) noexcept {
        const clock::time_point now = clock::now();
        if (d >= clock::time_point::max() - now)
            return std::nullopt;
        return now + std::chrono::duration_cast<clock::duration>(d);
    }

    void publish_metrics_locked() noexcept {
        thread_count_.store(num_threads_, memory_order_relaxed);
        idle_count_.store(num_idle_, memory_order_relaxed);
        queue_depth_.store(queue_.size() + file_queue_.size(), memory_order_relaxed);
    }

    blocking_options options_;
    runtime_core* owner_;

    std::mutex mutex_;
    std::condition_variable work_cv_;     ///< idle threads wait here for work or shutdown
    std::condition_variable shutdown_cv_; ///< shutdown waits here for threads to exit
    task_queue queue_;                    ///< general closures (`spawn`)
    task_queue file_queue_;               ///< file-lane jobs (`spawn_file`)
    std::size_t num_threads_ = 0;
    std::size_t num_idle_ = 0;
    std::size_t num_notify_ = 0;      ///< idle threads signalled for general work
    std::size_t num_notify_file_ = 0; ///< idle threads signalled to take a file-lane slot
    std::size_t file_slots_ = 0;      ///< file-lane slots held or reserved; <= max_file_threads
    std::size_t num_starting_ = 0;    ///< threads `submit` started that have not looked for work
    std::vector<os_thread> workers_;  ///< started, not yet retired (see "Joining")
    os_thread last_exiting_;          ///< the last thread that retired, not yet joined
    bool closed_ = false;
    bool shutdown_started_ = false;
    bool joined_ = false;

    atomic<std::size_t> thread_count_{0};
    atomic<std::size_t> idle_count_{0};
    atomic<std::size_t> queue_depth_{0};
};

} // namespace eddy::detail
