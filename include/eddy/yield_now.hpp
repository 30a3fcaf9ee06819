#pragma once
//! `eddy::yield_now()`: give the other ready tasks of this runtime a turn.
//!
//! Suspends the current task and puts it at the back of its scheduler's run queue; it resumes on
//! a thread of the same runtime after the tasks queued before it had their turn. Cancel-safe:
//! destroying the task while it is yielded just drops the queue entry's claim.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/task/header.hpp>

#include <coroutine>

namespace eddy {

class yield_now_operation {
public:
    [[nodiscard]] bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> h) const {
        detail::task_header* t = detail::context().task;
        if (t == nullptr) {
            // Keep current_waker's clear error for awaits outside a runtime task.
            (void)current_waker(h);
        }
        t->resume_point = h;
        // The task is RUNNING, so this only sets NOTIFIED: the poller re-queues it at the back
        // once this poll returns.
        t->vtable->wake_by_ref(t);
    }

    void await_resume() const noexcept {}
};

/// Yields to the scheduler once. See the header comment.
[[nodiscard]] inline yield_now_operation yield_now() noexcept {
    return {};
}

} // namespace eddy
