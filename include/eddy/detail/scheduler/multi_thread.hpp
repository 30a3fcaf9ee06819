#pragma once
//! The multi-thread, work-stealing scheduler (after Tokio's `scheduler/multi_thread`).
//!
//! N workers, each with a local ring queue (256 tasks) and a LIFO slot. A worker's tick:
//!  1. every `global_queue_interval` ticks, take from the inject queue first (remote work is
//!     never starved by local work): this worker's share of it (its length divided by the
//!     workers), the first to run now and the rest to the back of the local queue. One task per
//!     interval was not enough: a saturated server overflows its local queues into the inject
//!     queue, and those tasks, the oldest, then waited far longer than the rest (the p99
//!     latency of 1,000 busy connections was ten times the median);
//!  2. otherwise the LIFO slot, then the local queue, then the inject queue (a share of it too);
//!  3. nothing? become a searcher (at most half the workers search at once) and steal half of a
//!     random victim's queue, then try the inject queue again;
//!  4. still nothing: park in a futex. The last searcher to park re-checks every queue.
//! After each poll the worker runs the task in its LIFO slot (the one the polled task just
//! woke: message passing stays on one warm core), at most `max_lifo_polls` times in a row, so
//! two tasks waking each other cannot starve the rest of the queue.
//!
//! Where work goes: a task woken on a worker goes to that worker's LIFO slot (the previous
//! occupant moves to the queue); a yield or a wake-while-running goes to the back of the local
//! queue; spawns from a worker go to the back of its local queue; anything from another thread
//! goes to the inject queue and wakes a parked worker. Work added locally wakes a parked worker
//! when there is more than this worker will get to next and nobody is searching yet.
//!
//! Tasks are bound to the (sharded) owned-task list when spawned, so shutdown finds every one.
//!
//! Stranded work: every `event_interval` ticks a running worker also looks at the others, and
//! steals half the queue of one that has made no progress since its last look (its thread was
//! preempted, or it is inside one long poll): see `rescue_stranded`.
//!
//! Timers: each worker registers its timers in its own shard of the time driver. Running workers
//! fire due timers every `event_interval` ticks; of the parked workers, one holds the driver's
//! park role and sleeps only until the next timer is due (see detail/time/driver.hpp). Timers
//! that fire on a parked worker wake their tasks into its queues, and it leaves the sleepers.
//!
//! I/O: the park-role holder sleeps in the I/O driver (epoll_wait / io_uring wait) rather than a
//! futex, so I/O events end its sleep like timers do, and unparking it wakes the driver. Running
//! workers poll the I/O driver every `event_interval` ticks and flush queued io_uring operations
//! after every task they run.
//!
//! Shutdown, in order:
//!  1. set `shutdown_`, close the inject queue and the owned-task list (spawns after this are
//!     cancelled on the spot; wakes are dropped, the owned list still holds the tasks);
//!  2. unpark every worker and join the threads (each finishes the poll it is in);
//!  3. on the calling thread: cancel every owned task (frames destroyed at their suspension
//!     points, joiners woken with `errc::cancelled`);
//!  4. drop every queue entry left in LIFO slots, local queues and the inject queue.

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>
#include <eddy/runtime_metrics.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/inject_queue.hpp>
#include <eddy/detail/scheduler/multi_thread/idle.hpp>
#include <eddy/detail/scheduler/multi_thread/worker.hpp>
#include <eddy/detail/scheduler/park.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/scheduler/runtime_options.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/owned_tasks.hpp>
#include <eddy/detail/task/raw_task.hpp>
#include <eddy/detail/task/thread_waker.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace eddy::detail {

class multi_thread;

/// The worker the current thread runs, if any (of any multi-thread scheduler).
inline thread_local worker* tls_worker = nullptr;

/// Runs `root` to completion elsewhere and parks the calling (non-worker) thread until then.
inline void wait_for_completion(task_header* root) {
    auto* tw = new thread_waker(); // one reference for us
    tw->retain();                  // one for the join slot
    // SAFETY: JOIN_WAKER is clear: the slot is ours until set_join_waker publishes it.
    root->join_waker = tw;
    if (!root->state.set_join_waker()) {
        root->join_waker = nullptr;
        tw->release(); // the slot's reference: already complete
    } else {
        while ((root->state.load() & task_state::complete) == 0)
            tw->park.park();
    }
    tw->release();
}

class multi_thread final : public runtime_core {
public:
    /// Most tasks the LIFO slot may run in a row before the queue gets a turn.
    static constexpr std::uint32_t max_lifo_polls = 3;
    /// The most tasks one take from the inject queue moves (half a local queue).
    static constexpr std::size_t max_inject_share = local_queue<>::capacity / 2;

    /// Starts `options.worker_threads` workers (0: one per hardware thread).
    explicit multi_thread(runtime_options options)
        : runtime_core(std::move(options), worker_count_for(options), false),
          idle_(worker_count_for(options_)),
          owned_(4 * worker_count_for(options_)) {
        const std::uint32_t worker_threads = worker_count_for(options_);
        workers_.reserve(worker_threads);
        for (std::uint32_t i = 0; i < worker_threads; ++i) {
            workers_.push_back(std::make_unique<worker>(i, worker_threads));
        }
        try {
            for (auto& w : workers_) {
                worker* wp = w.get();
                w->thread = os_thread(thread_name(wp->index), options_.thread_stack_size,
                                      [this, wp] { run_worker(*wp); });
            }
        } catch (...) {
            shutdown();
            throw;
        }
    }

    multi_thread(const multi_thread&) = delete;
    multi_thread& operator=(const multi_thread&) = delete;
    ~multi_thread() override { EDDY_ASSERT(shutdown_.load(memory_order_relaxed)); }

    void schedule(task_header* t, schedule_hint hint) noexcept override {
        if (worker* w = local_worker()) {
            if (hint == schedule_hint::wake) {
                if (task_header* prev = std::exchange(w->lifo, t))
                    push_local(*w, prev);
            } else {
                push_local(*w, t);
            }
            if (should_notify_others(*w))
                notify_parked();
            return;
        }
        // From another thread the queue entry may be the task's last reference: once pushed, a
        // concurrent shutdown can drain it, free the task and with it the task's hold on this
        // scheduler. Hold one ourselves until the notification is done.
        retain();
        if (inject_.push(t)) {
            notify_parked();
        } else {
            release_task(t); // shutting down: the owned list cancels the task
        }
        release();
    }

    void spawn(task_header* t) noexcept override {
        worker* w = local_worker();
        if (w != nullptr) {
            w->spawned.add();
        } else {
            remote_spawned_.add();
        }
        if (!owned_.bind(t)) {
            // Shut down: cancel on the spot so the join handle reports errc::cancelled.
            shutdown_task(t, *this);
            release_task(t);
            return;
        }
        if (w != nullptr) {
            push_local(*w, t);
            if (should_notify_others(*w))
                notify_parked();
        } else if (inject_.push(t)) {
            notify_parked();
        } else {
            release_task(t);
        }
    }

    bool cancel_here(task_header* t) noexcept override { return shutdown_task(t, *this); }

    /// Parks the calling thread until `root` completes; the workers run it.
    void block_until(task_header* root) override { wait_for_completion(root); }

    /// See the module comment. Idempotent; must not be called from a worker.
    void shutdown() noexcept override {
        if (local_worker() != nullptr) {
            std::fputs("eddy: a runtime cannot be shut down from one of its worker threads\n",
                       stderr);
            std::abort();
        }
        if (shutdown_.exchange(true, memory_order_acq_rel))
            return;
        inject_.close();
        owned_.close();
        for (auto& w : workers_)
            w->park.unpark();
        for (auto& w : workers_)
            w->thread.join();

        // Frames destroyed below may wake (dropped: closed) or spawn (cancelled: closed).
        while (task_header* t = owned_.pop())
            shutdown_task(t, *this);
        for (auto& w : workers_) {
            // SAFETY: the worker's thread is joined: this thread is the queue's only user now.
            if (task_header* t = std::exchange(w->lifo, nullptr))
                release_task(t);
            while (task_header* t = w->queue.pop())
                release_task(t);
        }
        while (task_header* t = inject_.pop())
            release_task(t);
        io_->shut_down();
    }

    [[nodiscard]] std::uint32_t worker_count() const noexcept {
        return static_cast<std::uint32_t>(workers_.size());
    }

    // The interface run_task needs.
    void bind(task_header* /*t*/) noexcept {} // every task was bound at spawn
    void unbind(task_header* t) noexcept { owned_.unbind(t); }

protected:
    void fill_metrics(runtime_metrics& m) const override {
        m.workers = workers_.size();
        for (const auto& w : workers_) {
            m.per_worker.push_back(w->snapshot());
            m.spawned_tasks += m.per_worker.back().spawned;
        }
        m.spawned_tasks += remote_spawned_.get();
        m.inject_queue_depth = inject_.len();
        m.alive_tasks = owned_.size();
    }

private:
    [[nodiscard]] worker* local_worker() const noexcept {
        worker* w = tls_worker;
        return (w != nullptr && context().sched == this) ? w : nullptr;
    }

    static std::uint32_t worker_count_for(const runtime_options& o) {
        if (o.worker_threads != 0)
            return o.worker_threads;
        const unsigned hw = std::thread::hardware_concurrency();
        return hw != 0 ? hw : 1;
    }

    std::string thread_name(std::uint32_t index) const {
        return options_.thread_name + "-" + std::to_string(index);
    }

    void run_worker(worker& w) {
        thread_context& ctx = context();
        ctx.sched = this;
        ctx.runtime = this;
        ctx.blocking = blocking_;
        ctx.worker_index = w.index;
        tls_worker = &w;
        if (options_.on_thread_start)
            options_.on_thread_start();
        // ORDERING: acquire pairs with shutdown's exchange; the flag is re-read every tick.
        while (!shutdown_.load(memory_order_acquire)) {
            ++w.tick;
            if (w.tick % options_.event_interval == 0) {
                // The drivers' turn, while every worker is busy.
                io_->poll();
                time_.process();
                // ORDERING: relaxed: only a hint for rescue_stranded.
                w.progress.store(w.tick, memory_order_relaxed);
                rescue_stranded(w);
            }
            task_header* t = next_task(w);
            if (t == nullptr)
                t = steal_work(w);
            if (t != nullptr) {
                run(w, t);
                w.flushes.after_poll(*io_, w.lifo == nullptr && w.queue.is_empty());
            } else {
                w.flushes.now(*io_);
                park(w);
            }
        }
        if (options_.on_thread_stop)
            options_.on_thread_stop();
        tls_worker = nullptr;
        ctx.worker_index = 0;
        ctx.sched = nullptr;
        ctx.runtime = nullptr;
        ctx.blocking = nullptr;
    }

    task_header* next_task(worker& w) {
        if (w.tick % options_.global_queue_interval == 0) {
            if (task_header* t = take_inject_share(w))
                return t;
        }
        if (task_header* t = std::exchange(w.lifo, nullptr))
            return t;
        if (task_header* t = w.queue.pop())
            return t;
        return take_inject_share(w);
    }

    /// Pops this worker's share of the inject queue: returns the oldest task and appends the
    /// rest to the local queue (never more than it has room for).
    task_header* take_inject_share(worker& w) {
        const std::size_t queued = inject_.len();
        if (queued == 0)
            return nullptr;
        const std::size_t room = local_queue<>::capacity - w.queue.len();
        const std::size_t share =
            std::min<std::size_t>({queued / workers_.size() + 1, room + 1, max_inject_share});
        std::array<task_header*, max_inject_share> batch{};
        const std::size_t n = inject_.pop_batch(batch.data(), share);
        if (n == 0)
            return nullptr;
        for (std::size_t i = 1; i < n; ++i)
            push_local(w, batch[i]);
        if (n > 1 && should_notify_others(w))
            notify_parked(); // a parked worker may steal some of them
        return batch[0];
    }

    /// Takes over work stranded on another worker: one whose `progress` has not moved since this
    /// worker last looked (its thread is off the CPU, or inside one long poll) but has tasks
    /// queued. Half of them move here, as an idle worker's steal would take. Without this, when
    /// there are more runnable threads than cores (a busy process beside this one), the tasks
    /// queued on a preempted worker wait out the kernel's whole time slice while this one stays
    /// busy with its own: on 2 cores shared with a load client, the p99 latency of 100 echo
    /// connections was a time slice (4 ms) against 1 ms with a single worker.
    void rescue_stranded(worker& w) {
        for (const auto& other : workers_) {
            worker& v = *other;
            if (&v == &w)
                continue;
            // ORDERING: relaxed: a stale value only delays or advances a steal.
            const std::uint32_t now = v.progress.load(memory_order_relaxed);
            const bool stuck = now == w.seen_progress[v.index];
            w.seen_progress[v.index] = now;
            if (!stuck || !v.queue.is_stealable())
                continue;
            const std::uint32_t before = w.queue.len();
            if (task_header* t = v.queue.steal_into(w.queue)) {
                w.steal_operations.add();
                w.steals.add(1 + w.queue.len() - before);
                push_local(w, t);
            }
        }
    }

    task_header* steal_work(worker& w) {
        if (!w.searching) {
            if (!idle_.transition_worker_to_searching())
                return nullptr;
            w.searching = true;
        }
        const auto n = static_cast<std::uint32_t>(workers_.size());
        const std::uint32_t start = w.rng.next(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t victim = (start + i) % n;
            if (victim == w.index)
                continue;
            const std::uint32_t before = w.queue.len();
            if (task_header* t = workers_[victim]->queue.steal_into(w.queue)) {
                w.steal_operations.add();
                w.steals.add(1 + w.queue.len() - before);
                return t;
            }
        }
        return inject_.pop();
    }

    void run(worker& w, task_header* t) {
        if (w.searching) {
            w.searching = false;
            // The last searcher found work: wake another so the rest keeps being looked for.
            if (idle_.transition_worker_from_searching())
                notify_parked();
        }
        poll(w, t);
        for (std::uint32_t lifo_polls = 0;;) {
            task_header* next = std::exchange(w.lifo, nullptr);
            if (next == nullptr)
                break;
            if (++lifo_polls > max_lifo_polls) {
                push_local(w, next);
                break;
            }
            poll(w, next);
        }
    }

    void poll(worker& w, task_header* t) {
        w.polls.add();
        run_task(t, *this);
    }

    void park(worker& w) {
        if (w.lifo != nullptr || !w.queue.is_empty())
            return;
        w.parks.add();
        const bool last_searcher = idle_.transition_worker_to_parked(w.index, w.searching);
        w.searching = false;
        if (last_searcher)
            notify_if_work_pending();
        // One parked worker at a time waits on the time driver, until the next timer.
        bool driver = false;
        while (!shutdown_.load(memory_order_acquire)) {
            if (!driver)
                driver = time_.try_acquire_park_role(&w.park);
            if (driver) {
                time_.park(w.park, false);
            } else {
                w.park.park();
            }
            if (!idle_.is_parked(w.index)) {
                // worker_to_notify took us off the sleepers and counted us as searching.
                w.searching = true;
                break;
            }
            if (w.lifo != nullptr || !w.queue.is_empty()) {
                // Timers fired here and woke tasks into our queues: leave the sleepers list
                // ourselves (unless a notifier just did, counting us as searching).
                w.searching = !idle_.unpark_worker_by_id(w.index);
                break;
            }
        }
        if (driver)
            time_.release_park_role();
    }

    void push_local(worker& w, task_header* t) {
        if (w.queue.push_back(t, inject_) != 0) {
            w.overflows.add();
            notify_parked();
        }
    }

    [[nodiscard]] static bool should_notify_others(const worker& w) noexcept {
        if (w.searching)
            return false;
        return (w.lifo != nullptr ? 1U : 0U) + w.queue.len() > 1;
    }

    void notify_parked() {
        if (std::optional<std::uint32_t> i = idle_.worker_to_notify()) {
            worker& target = *workers_[*i];
            target.unparks.add();
            target.park.unpark();
        }
    }

    void notify_if_work_pending() {
        for (const auto& w : workers_) {
            if (w->queue.is_stealable()) {
                notify_parked();
                return;
            }
        }
        if (inject_.len() != 0)
            notify_parked();
    }

    std::vector<std::unique_ptr<worker>> workers_;
    inject_queue inject_;
    idle idle_;
    sharded_owned_tasks owned_;
    atomic<bool> shutdown_{false};
    shared_counter remote_spawned_;
};

} // namespace eddy::detail
