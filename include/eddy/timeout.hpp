#pragma once
//! `eddy::timeout(d, aw)` and `eddy::timeout_at(t, aw)`: await `aw`, but give up at a deadline.
//!
//! ```cpp
//! eddy::result<std::string> r = co_await eddy::timeout(500ms, fetch(url));
//! if (!r && r.error() == eddy::errc::timed_out) { ... }
//! ```
//!
//! The result is `eddy::result<T>` (T: what awaiting `aw` gives): its value, or `errc::timed_out`
//! when the deadline came first. An exception thrown by `aw` propagates unchanged. `timeout(d, aw)`
//! counts `d` from the moment it is awaited.
//!
//! `aw` runs inside the awaiting task (nothing is spawned) and is tried first: if it is ready at
//! once (an awaiter whose `await_ready` holds, or a task that finishes without suspending), no
//! timer is ever registered, so wrapping fast operations costs little. Otherwise a timer is armed
//! and whichever comes first wins. On expiry the operation is cancelled before `timeout` returns
//! (invariant 2): its frame is destroyed at its suspension point, which withdraws whatever it
//! waited on. If the operation completes in the same turn as the deadline, its value wins.
//!
//! How: an awaiter (`await_suspend` returning void or bool: `sleep`, a channel's `recv`, a
//! socket's `read`, another timeout) suspends right in the awaiting coroutine, with wakers that
//! tell its wake from the deadline's (detail/time/timeout_state.hpp); on expiry it is destroyed
//! with the timeout, at the end of the `co_await` expression. Anything else (a task, an awaitable
//! with `operator co_await`) runs as a branch in a small coroutine of its own
//! (detail/task/branch.hpp).
//!
//! Cancel-safety is that of `aw`: the timeout itself loses nothing, and cancelling the task that
//! awaits a timeout cancels `aw` and withdraws the timer.
//!
//! `aw` is held by value when it is a movable temporary (a task, most awaitables), by reference
//! when it is an lvalue (keep it alive until the timeout finishes) or a non-movable temporary (an
//! intrusive awaiter: then await the timeout in the same expression that creates it).

#include <eddy/config.hpp>

#include <eddy/clock.hpp>
#include <eddy/concepts.hpp>
#include <eddy/result.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/task/branch.hpp>
#include <eddy/detail/time/timeout_state.hpp>
#include <eddy/detail/time/timer.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

namespace eddy {

namespace detail {

template <class T>
task<result<T>> run_with_timeout(time_source::time_point deadline, task<T> inner) {
    branch_task<T> body(std::move(inner));
    branch_set_ref set(2); // 0: the operation, 1: the timer
    set->start(0, body.handle());
    timer deadline_timer;
    // The operation first: if it finishes now, no timer is registered at all.
    if (set->run_ready() == branch_set::none) {
        waker w = set->event_waker(1);
        if (!deadline_timer.arm(deadline, w))
            co_return errc::timed_out;
        while (!body.done() && !(*set)[1].fired)
            co_await set->poll();
    }
    if (!body.done())
        co_return errc::timed_out; // leaving destroys the body at its suspension point
    deadline_timer.cancel();
    if constexpr (std::is_void_v<T>) {
        body.take();
        co_return result<void>();
    } else {
        co_return result<T>(body.take());
    }
}

} // namespace detail

/// The awaitable `timeout` and `timeout_at` return; `S` is how it holds the operation (see
/// `detail::stored_awaitable_t`). See the header comment.
template <class S>
class [[nodiscard]] timeout_operation {
    using stored_type = std::remove_cvref_t<S>;
    /// An awaiter suspends right in the awaiting coroutine (see detail/time/timeout_state.hpp);
    /// anything else (a task, an awaitable with `operator co_await`, an awaiter that transfers
    /// to another coroutine) runs as a branch in a coroutine of its own.
    static constexpr bool in_place = detail::in_place_awaiter<stored_type>;

public:
    using value_type = await_result_t<S&&>;
    using output_type = result<value_type>;

    template <class A>
    timeout_operation(std::chrono::nanoseconds d, A&& aw) : aw_(std::forward<A>(aw)), after_(d) {}
    template <class A>
    timeout_operation(instant deadline, A&& aw) : aw_(std::forward<A>(aw)), deadline_(deadline) {}

    /// Moves the operation and the deadline: a timeout is only moved before it is awaited.
    timeout_operation(timeout_operation&& other) noexcept(std::is_nothrow_constructible_v<S, S&&>)
        : aw_(static_cast<S&&>(other.aw_)), after_(other.after_), deadline_(other.deadline_) {}
    timeout_operation& operator=(timeout_operation&&) = delete;
    timeout_operation(const timeout_operation&) = delete;
    timeout_operation& operator=(const timeout_operation&) = delete;

    ~timeout_operation() {
        if constexpr (in_place) {
            if (state_ != nullptr) {
                // Destroyed while suspended (the awaiting task was cancelled): withdraw the timer;
                // the awaiter withdraws its own registration when it is destroyed.
                (void)std::exchange(state_, nullptr)->close();
            }
        }
    }

    bool await_ready() {
        if constexpr (awaiter<stored_type>) {
            ready_ = aw_.await_ready();
            return ready_;
        } else {
            return false;
        }
    }

    auto await_suspend(std::coroutine_handle<> h) {
        const instant deadline =
            deadline_ ? *deadline_ : detail::saturating_add(clock::now(), after_);
        if constexpr (in_place) {
            return suspend_in_place(clock::to_steady(deadline), h);
        } else {
            impl_.emplace(detail::run_with_timeout(clock::to_steady(deadline),
                                                   detail::make_branch_task<S>(aw_)));
            awaiter_.emplace(std::move(*impl_).operator co_await());
            return awaiter_->await_suspend(h);
        }
    }

    output_type await_resume() {
        if constexpr (in_place) {
            bool operation_won = true; // when it did not suspend
            if (state_ != nullptr) {
                const std::uint32_t woken = std::exchange(state_, nullptr)->close();
                operation_won = (woken & detail::timeout_state::operation_bit) != 0;
            }
            if (!operation_won)
                return errc::timed_out; // the awaiter, destroyed with us, withdraws its waker
            return resume_operation();
        } else {
            if constexpr (awaiter<stored_type>) {
                if (ready_)
                    return resume_operation();
            }
            return awaiter_->await_resume();
        }
    }

private:
    output_type resume_operation() {
        if constexpr (std::is_void_v<value_type>) {
            aw_.await_resume();
            return output_type();
        } else {
            return output_type(aw_.await_resume());
        }
    }

    bool suspend_in_place(detail::time_source::time_point deadline, std::coroutine_handle<> h) {
        detail::thread_context& ctx = detail::context();
        if (ctx.task == nullptr)
            (void)current_waker(h); // throws the explanatory logic_error
        detail::timeout_state* state = detail::timeout_state::create();
        detail::resumable* parent = std::exchange(ctx.task, state->operation());
        bool suspended = false;
        try {
            if constexpr (std::is_void_v<decltype(aw_.await_suspend(h))>) {
                aw_.await_suspend(h);
                suspended = true;
            } else {
                suspended = aw_.await_suspend(h);
            }
        } catch (...) {
            ctx.task = parent;
            (void)state->close();
            throw;
        }
        ctx.task = parent;
        state_ = state;
        if (!suspended) {
            // Ready after all: no timer.
            (void)std::exchange(state_, nullptr)->close();
            return false;
        }
        // The operation waits: arm the deadline (already due: see what woke, now).
        if (!state_->arm(deadline))
            return false;
        if (state_->operation_woken()) {
            // It woke itself while suspending (a yield): let the runtime's other tasks run first.
            detail::coop::yield_current(h);
            return true;
        }
        return state_->suspend(h);
    }

    struct none {};
    /// In place: the shared state (with the deadline's timer), while suspended.
    using state_type = std::conditional_t<in_place, detail::timeout_state*, none>;
    /// As a branch: the coroutine that races the operation against the timer.
    using impl_type = std::conditional_t<in_place, none, std::optional<task<output_type>>>;
    using awaiter_type =
        std::conditional_t<in_place, none, std::optional<typename task<output_type>::awaiter>>;

    S aw_;
    std::chrono::nanoseconds after_{};
    std::optional<instant> deadline_;
    bool ready_ = false;
    [[no_unique_address]] state_type state_{};
    [[no_unique_address]] impl_type impl_;
    [[no_unique_address]] awaiter_type awaiter_;
};

/// Awaits `aw` for at most `d` (counted from the co_await). See the header comment.
template <class Rep, class Period, awaitable A>
timeout_operation<detail::stored_awaitable_t<A>> timeout(std::chrono::duration<Rep, Period> d,
                                                         A&& aw) {
    using ns = std::chrono::nanoseconds;
    using wide = std::chrono::duration<long double, std::nano>;
    const ns after = wide(d) >= wide(ns::max()) ? ns::max() : std::chrono::duration_cast<ns>(d);
    return timeout_operation<detail::stored_awaitable_t<A>>(after, std::forward<A>(aw));
}

/// Awaits `aw` until `deadline` at most. See the header comment.
template <awaitable A>
timeout_operation<detail::stored_awaitable_t<A>> timeout_at(instant deadline, A&& aw) {
    return timeout_operation<detail::stored_awaitable_t<A>>(deadline, std::forward<A>(aw));
}

} // namespace eddy
