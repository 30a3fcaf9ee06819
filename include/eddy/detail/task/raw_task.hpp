#pragma once
//! The operations on a spawned task that every scheduler shares: waking, polling, completing,
//! cancelling, shutting down and freeing. The state transitions live in state.hpp; this file
//! decides what to do with their outcome.
//!
//! `run`, `cancel_idle` and `complete` take the scheduler as a template parameter (static
//! dispatch on the hot path). A scheduler type `S` provides:
//!
//!     void bind(task_header*)             at every poll: link into the owned-task list if the
//!                                         flavor binds lazily and the task is not linked yet
//!     void unbind(task_header*)           at completion: unlink if linked
//!     void schedule(task_header*, schedule_hint)
//!     void unhandled_exception(task_header*, std::exception_ptr) noexcept

#include <eddy/config.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/task/header.hpp>

#include <exception>
#include <utility>

namespace eddy::detail {

/// Units of cooperative budget a task gets per poll (see coop.hpp).
inline constexpr std::uint32_t coop_budget_per_poll = 128;

/// Frees a task whose last reference is gone: destroys the frame if it still exists (a finished
/// task's output lives in it), then the memory.
inline void dealloc_task(task_header* t) noexcept {
    if (!t->frame_destroyed()) {
        t->resume_point = nullptr;
        // The frame's operator delete leaves the memory alone because the task is spawned.
        t->coroutine().destroy();
    }
    scheduler* s = t->sched;
    free_frame_memory(t);
    s->release();
}

inline void release_task(task_header* t, std::uint64_t refs = 1) noexcept {
    if (t->state.ref_dec(refs))
        dealloc_task(t);
}

inline void wake_task_by_val(wake_target* w) noexcept {
    auto* t = static_cast<task_header*>(w);
    switch (t->state.transition_to_notified_by_val()) {
    case task_state::wake_action::submit:
        t->sched->schedule(t, schedule_hint::wake);
        break;
    case task_state::wake_action::dealloc:
        dealloc_task(t);
        break;
    case task_state::wake_action::none:
        break;
    }
}

inline void wake_task_by_ref(wake_target* w) noexcept {
    auto* t = static_cast<task_header*>(w);
    if (t->state.transition_to_notified_by_ref() == task_state::wake_action::submit) {
        t->sched->schedule(t, schedule_hint::wake);
    }
}

inline void clone_task_ref(wake_target* w) noexcept {
    static_cast<task_header*>(w)->state.ref_inc();
}

inline void drop_task_ref(wake_target* w) noexcept {
    release_task(static_cast<task_header*>(w));
}

template <class Promise>
inline constexpr task_vtable task_vtable_for{
    {&wake_task_by_val, &wake_task_by_ref, &clone_task_ref, &drop_task_ref, true},
    [](task_header* t) noexcept -> std::exception_ptr {
        return std::coroutine_handle<Promise>::from_address(t->frame()).promise().exception();
    },
};

/// `join_handle::abort()`: from any thread.
inline void abort_task(task_header* t) noexcept {
    if (t->state.transition_to_notified_and_cancel())
        t->sched->schedule(t, schedule_hint::yield);
}

/// Finishes a task whose frame completed or was destroyed. The caller holds RUNNING and the
/// poll's reference; the owned list holds another. Both are released here.
template <class S>
void complete_task(task_header* t, S& sched) noexcept {
    const std::uint64_t prev = t->state.transition_to_complete();
    if (!(prev & task_state::join_interest)) {
        // Nobody will read the output: an exception goes to the runtime's hook.
        if (!t->frame_destroyed()) {
            const auto* vt = static_cast<const task_vtable*>(t->vtable);
            if (std::exception_ptr e = vt->exception(t))
                sched.unhandled_exception(t, std::move(e));
        }
    } else if (prev & task_state::join_waker) {
        // SAFETY: JOIN_WAKER was set before COMPLETE, so the join side stored the waker and will
        // not touch the field again; its reference is ours to consume.
        wake_target* w = std::exchange(t->join_waker, nullptr);
        w->vtable->wake(w);
    }
    sched.unbind(t);
    release_task(t, 2);
}

/// Destroys the frame at its current suspension point (destructors run), then completes the task
/// as cancelled. The caller holds RUNNING.
template <class S>
void cancel_task(task_header* t, S& sched) noexcept {
    thread_context& ctx = context();
    resumable* outer = std::exchange(ctx.task, t);
    t->resume_point = nullptr; // marks the frame destroyed
    t->coroutine().destroy();
    ctx.task = outer;
    complete_task(t, sched);
}

/// Polls a task popped from a run queue (the entry's reference comes with it).
template <class S>
void run_task(task_header* t, S& sched) noexcept {
    switch (t->state.transition_to_running()) {
    case task_state::run_action::drop_ref:
        release_task(t);
        return;
    case task_state::run_action::cancel:
        cancel_task(t, sched);
        return;
    case task_state::run_action::poll:
        break;
    }
    sched.bind(t);
    thread_context& ctx = context();
    resumable* outer = std::exchange(ctx.task, t);
    ctx.budget = coop_budget_per_poll;
    poll_resumable(*t);
    ctx.budget = UINT32_MAX;
    ctx.task = outer;
    if (t->coroutine().done()) {
        complete_task(t, sched);
    } else if (t->state.transition_to_idle() == task_state::idle_action::requeue) {
        sched.schedule(t, schedule_hint::yield);
    }
}

/// Runtime shutdown of one task: cancel it now if idle; if another thread runs it, that thread
/// sees CANCELLED on its next poll. True when it was cancelled here (its frame is gone).
template <class S>
bool shutdown_task(task_header* t, S& sched) noexcept {
    if (!t->state.transition_to_shutdown())
        return false;
    t->state.ref_inc(); // stands in for the poll's reference that complete_task releases
    cancel_task(t, sched);
    return true;
}

} // namespace eddy::detail
