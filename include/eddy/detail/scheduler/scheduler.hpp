#pragma once
//! The interface the task core needs from a scheduler: where a woken task goes.
//!
//! Both flavors (current-thread, multi-thread) implement it. `schedule` may be called from any
//! thread, including threads that belong to no runtime; the scheduler decides whether the task
//! goes to a local queue (caller is one of its threads) or the inject queue (plus a wake-up).

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <cstddef>
#include <exception>

namespace eddy::detail {

struct task_header;

enum class schedule_hint {
    wake,  ///< woken by another task or a driver: may run soon (LIFO slot where there is one)
    yield, ///< the task yielded or was woken while running: back of the queue
};

class scheduler {
public:
    /// Queues a task whose NOTIFIED bit the caller set; the caller's reference moves to the queue.
    virtual void schedule(task_header* task, schedule_hint hint) noexcept = 0;

    /// Takes a freshly spawned task (state `task_state::initial`). If the scheduler is shut down,
    /// cancels it on the spot so its join handle reports `errc::cancelled`.
    virtual void spawn(task_header* task) noexcept = 0;

    /// Cancels `task` on the calling thread, now, unless it completed or another thread is
    /// polling it (then it is marked CANCELLED, and the caller may retry once that poll ended).
    /// True when its frame was destroyed here. The caller holds a reference to the task. Only
    /// from a thread that may complete the scheduler's tasks: one of its workers, or, for the
    /// current-thread flavor, the thread inside `block_on` (or the one shutting it down). Used to
    /// wait synchronously for a task's frame to be gone (`eddy::scope`'s destructor).
    virtual bool cancel_here(task_header* task) noexcept = 0;

    /// An exception escaped a task nobody joins (or whose join handle was dropped before the
    /// exception was looked at). Called on the thread that noticed; must not throw.
    virtual void unhandled_exception(task_header* task, std::exception_ptr e) noexcept = 0;

    /// The scheduler object is reference counted: the runtime, every runtime handle and every
    /// spawned task (until its memory is freed) hold one, so a late wake from a foreign thread that
    /// races runtime destruction still finds a live (closed) scheduler.
    void retain() noexcept {
        // ORDERING: relaxed, derived from an existing reference.
        refs_.fetch_add(1, memory_order_relaxed);
    }
    void release() noexcept {
        // ORDERING: acq_rel so the deleting thread sees every other owner's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1)
            delete this;
    }

    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

protected:
    scheduler() = default;
    virtual ~scheduler() = default;

private:
    atomic<std::size_t> refs_{1};
};

} // namespace eddy::detail
