#pragma once
//! The cooperative budget (invariant 4). Each poll of a task starts with `initial_budget` units;
//! runtime awaitables whose result is ready spend one unit instead of suspending. Once the budget
//! is spent they suspend anyway and re-queue the task at the back of its run queue, so a task
//! looping over an always-ready operation cannot starve the other tasks of its worker.
//!
//! Outside a poll (a plain thread) the budget is unlimited.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/task/raw_task.hpp>

#include <coroutine>
#include <cstdint>

namespace eddy::detail::coop {

inline constexpr std::uint32_t initial_budget = coop_budget_per_poll;
inline constexpr std::uint32_t unlimited = UINT32_MAX;

/// Spends one unit. False when the budget is spent: the caller must suspend and yield.
inline bool try_consume() noexcept {
    thread_context& ctx = context();
    if (ctx.budget == 0)
        return false;
    if (ctx.budget != unlimited)
        --ctx.budget;
    return true;
}

/// Whether anything is left, without spending it.
inline bool has_remaining() noexcept {
    return context().budget != 0;
}

/// From an `await_suspend(h)`: suspend the current task at `h` and put it at the back of its run
/// queue. Throws `std::logic_error` outside a spawned task.
inline void yield_current(std::coroutine_handle<> h) {
    resumable* t = context().task;
    if (t == nullptr) {
        (void)current_waker(h); // throws the explanatory logic_error
        return;
    }
    t->resume_point = h;
    // The task is RUNNING, so this only sets NOTIFIED: the poller re-queues it at the back once
    // this poll returns.
    t->vtable->wake_by_ref(t);
}

} // namespace eddy::detail::coop
