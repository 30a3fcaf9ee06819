#pragma once
//! `eddy::yield_now()`: give the other ready tasks of this runtime a turn.
//!
//! Suspends the current task and puts it at the back of its scheduler's run queue; it resumes on
//! a thread of the same runtime after the tasks queued before it had their turn. Cancel-safe:
//! destroying the task while it is yielded just drops the queue entry's claim. Throws
//! `std::logic_error` when awaited outside a task of an eddy runtime.

#include <eddy/config.hpp>

#include <eddy/detail/coop.hpp>

#include <coroutine>

namespace eddy {

class yield_now_operation {
public:
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { detail::coop::yield_current(h); }
    void await_resume() const noexcept {}
};

/// Yields to the scheduler once. See the header comment.
[[nodiscard]] inline yield_now_operation yield_now() noexcept {
    return {};
}

} // namespace eddy
