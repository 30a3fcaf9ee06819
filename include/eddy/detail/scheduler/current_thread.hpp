#pragma once
//! The current-thread scheduler: every task runs on the thread that calls `block_on`.
//!
//! Owner (the thread inside `block_on`): pops from the local queue, polls, binds and unbinds
//! owned tasks, turns the I/O driver, fires timers, and parks in the I/O driver (until an I/O
//! event or the next timer) when idle. Any
//! thread: `schedule` and `spawn`, which go to the inject queue plus an unpark when they come from
//! elsewhere. Tasks only run while some thread is inside `block_on`; work queued in between waits
//! for the next call, as in Tokio.
//!
//! Shutdown, in order:
//!  1. close the inject queue, so remote spawns and wakes are refused (a refused spawn is
//!     cancelled on the spot by the spawning thread);
//!  2. cancel every owned task: destroy its frame at its suspension point, complete it as
//!     cancelled, wake its joiner;
//!  3. drain the local and inject queues, cancelling never-polled tasks and dropping the entries'
//!     references;
//!  4. repeat 2-3 until all are empty, since destructors run in step 2 may wake or spawn.
//! The blocking pool (`blocking()`, created here, owned by reference) is shut down separately,
//! by the runtime, after this: it waits for running `spawn_blocking` closures.

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>

#include <eddy/detail/blocking/pool.hpp>
#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/inject_queue.hpp>
#include <eddy/detail/scheduler/park.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/scheduler/runtime_options.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/task_queue.hpp>
#include <eddy/detail/task/owned_tasks.hpp>
#include <eddy/detail/task/raw_task.hpp>
#include <eddy/detail/util/owner_counter.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <utility>

namespace eddy::detail {

class current_thread final : public runtime_core {
public:
    explicit current_thread(runtime_options options) : runtime_core(std::move(options), 1, true) {}

    void schedule(task_header* t, schedule_hint /*hint*/) noexcept override {
        if (is_owner_thread()) {
            push_local(t);
            return;
        }
        // The pushed entry may be the task's last reference, and a concurrent shutdown may free
        // the task and its hold on this scheduler: keep our own until the unpark is done.
        retain();
        if (inject_.push(t)) {
            parker_.unpark();
        } else {
            // Closed: shutdown cancels the task through the owned list (or already did).
            release_task(t);
        }
        release();
    }

    void spawn(task_header* t) noexcept override {
        if (is_owner_thread()) {
            spawned_local_.add();
        } else {
            spawned_remote_.add();
        }
        if (is_owner_thread() && !closed_.load(memory_order_relaxed)) {
            push_local(t);
        } else if (!is_owner_thread() && inject_.push(t)) {
            parker_.unpark();
        } else {
            shutdown_task(t, *this);
            release_task(t); // the queue entry's reference: it will never be queued
        }
    }

    bool cancel_here(task_header* t) noexcept override { return shutdown_task(t, *this); }

    /// Runs tasks on the calling thread until `root` completes.
    void block_until(task_header* root) override {
        thread_context& ctx = context();
        if (running_.exchange(true, memory_order_acquire)) {
            throw std::logic_error(
                "eddy: block_on is already running on this current-thread runtime in another "
                "thread");
        }
        struct exit_guard {
            current_thread* self;
            thread_context saved; // block_on may run on a blocking-pool thread: restore it
            ~exit_guard() {
                thread_context& c = context();
                c.sched = saved.sched;
                c.runtime = saved.runtime;
                c.blocking = saved.blocking;
                // ORDERING: release pairs with shutdown's acquire wait: our last queue accesses
                // happen before it touches the queues.
                self->running_.store(false, memory_order_release);
                self->stopped_.unpark();
            }
        } guard{this, ctx};
        ctx.sched = this;
        ctx.runtime = this;
        ctx.blocking = blocking_;

        std::uint32_t tick = 0;
        flush_batch flushes;
        // ORDERING: acquire pairs with shutdown's release of closed_. A shutdown from another
        // thread (a blocking closure's block_on outliving the runtime) ends the loop; the caller
        // then finds the root unfinished and reports it cancelled.
        while (!is_complete(root) && !closed_.load(memory_order_acquire)) {
            bool ran = false;
            for (std::uint32_t i = 0; i < options_.event_interval; ++i) {
                task_header* t = next_task(++tick);
                if (t == nullptr)
                    break;
                ran = true;
                polls_.add();
                run_task(t, *this);
                flushes.after_poll(*io_, local_.size() == 0);
                if (is_complete(root))
                    return;
            }
            // The drivers' turn: every `event_interval` polls, and whenever the queues ran dry.
            io_->poll();
            time_.process();
            publish_depths();
            if (!ran && local_.size() == 0) {
                flushes.now(*io_);
                parks_.add();
                // Sleep until the next timer (or a remote wake). A paused clock jumps to the next
                // timer instead, unless blocking closures may still wake someone.
                time_.park(parker_, !blocking_->busy());
            }
        }
    }

    /// See the module comment. Called by the runtime's destructor. If a `block_on` is running on
    /// another thread (possible from a blocking closure), it is stopped first and waited for.
    void shutdown() noexcept override {
        // ORDERING: release pairs with block_until's acquire load.
        if (closed_.exchange(true, memory_order_acq_rel))
            return;
        inject_.close();
        parker_.unpark();
        // ORDERING: acquire pairs with block_until's release on exit. (Not atomic::wait: its
        // libstdc++ 12 implementation for bool was seen to miss the notification under TSan.)
        while (running_.load(memory_order_acquire))
            stopped_.park_for(std::chrono::milliseconds(1));
        thread_context& ctx = context();
        const thread_context saved = ctx;
        ctx.sched = this;
        ctx.runtime = this;
        ctx.blocking = blocking_;
        for (;;) {
            if (task_header* t = owned_.pop()) {
                shutdown_task(t, *this);
            } else if (task_header* q = local_.pop_front()) {
                shutdown_task(q, *this);
                release_task(q);
            } else if (task_header* r = inject_.pop()) {
                shutdown_task(r, *this);
                release_task(r);
            } else {
                break;
            }
        }
        ctx.sched = saved.sched;
        ctx.runtime = saved.runtime;
        ctx.blocking = saved.blocking;
        io_->shut_down();
    }

    // The interface run_task needs (owner thread only).
    void bind(task_header* t) noexcept {
        // Tasks are linked at their first poll (remote spawns cannot touch this list).
        if (!owned_tasks::is_linked(t))
            owned_.push(t);
    }
    void unbind(task_header* t) noexcept {
        if (owned_tasks::is_linked(t))
            owned_.remove(t);
    }

protected:
    void fill_metrics(runtime_metrics& m) const override {
        m.workers = 1;
        worker_metrics w;
        w.polls = polls_.get();
        w.parks = parks_.get();
        w.spawned = spawned_local_.get() + spawned_remote_.get();
        w.local_queue_depth = local_depth_.get();
        m.per_worker.push_back(w);
        m.spawned_tasks = w.spawned;
        m.inject_queue_depth = inject_.len();
        m.alive_tasks = owned_size_.get() + local_depth_.get() + inject_.len();
    }

private:
    [[nodiscard]] bool is_owner_thread() const noexcept { return context().sched == this; }

    static bool is_complete(task_header* t) noexcept {
        return (t->state.load() & task_state::complete) != 0;
    }

    task_header* next_task(std::uint32_t tick) {
        if (tick % options_.global_queue_interval == 0) {
            if (task_header* t = inject_.pop())
                return t;
        }
        if (task_header* t = local_.pop_front())
            return t;
        return inject_.pop();
    }

    void push_local(task_header* t) noexcept { local_.push_back(t); }

    /// Samples the owner-only sizes for metrics readers (once per batch of polls).
    void publish_depths() noexcept {
        local_depth_.set(local_.size());
        owned_size_.set(owned_.size());
    }

    inject_queue inject_;
    parker parker_;
    task_queue local_;
    owned_tasks owned_;
    // Owner-written counters and sampled sizes for metrics readers on other threads.
    owner_counter polls_;
    owner_counter parks_;
    owner_counter local_depth_;
    owner_counter owned_size_;
    atomic<bool> running_{false};
    parker stopped_; // a block_on running elsewhere tells a waiting shutdown it has left
    owner_counter spawned_local_;   // spawns from the block_on thread
    shared_counter spawned_remote_; // spawns from any other thread
    atomic<bool> closed_{false};
};

} // namespace eddy::detail
