#pragma once
//! Cooperative scheduling: `eddy::consume_budget()`.
//!
//! Every poll of a task gets a budget of 128 units. eddy's awaitables spend a unit when their
//! result is already there (a join of a finished task, and later a channel with a message, a
//! socket with data) and, once the budget is spent, yield instead of continuing, so a task that
//! keeps finding ready work cannot starve the other tasks on its worker (invariant 4).
//!
//! `co_await eddy::consume_budget()` lets CPU-bound loops of your own take part: it costs a
//! decrement while budget remains and yields (like `yield_now`) when it is spent. Cancel-safe.

#include <eddy/config.hpp>

#include <eddy/detail/coop.hpp>

#include <coroutine>

namespace eddy {

class consume_budget_operation {
public:
    [[nodiscard]] bool await_ready() const noexcept { return detail::coop::try_consume(); }
    void await_suspend(std::coroutine_handle<> h) const { detail::coop::yield_current(h); }
    void await_resume() const noexcept {}
};

/// Spends one unit of the current task's budget; yields if none is left.
[[nodiscard]] inline consume_budget_operation consume_budget() noexcept {
    return {};
}

} // namespace eddy
