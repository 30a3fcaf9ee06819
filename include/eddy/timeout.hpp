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

#include <eddy/detail/task/branch.hpp>
#include <eddy/detail/time/timer.hpp>

#include <chrono>
#include <coroutine>
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

public:
    using value_type = await_result_t<S&&>;
    using output_type = result<value_type>;

    template <class A>
    timeout_operation(std::chrono::nanoseconds d, A&& aw) : aw_(std::forward<A>(aw)), after_(d) {}
    template <class A>
    timeout_operation(instant deadline, A&& aw) : aw_(std::forward<A>(aw)), deadline_(deadline) {}

    bool await_ready() {
        if constexpr (awaiter<stored_type>) {
            ready_ = aw_.await_ready();
            return ready_;
        } else {
            return false;
        }
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
        const instant deadline =
            deadline_ ? *deadline_ : detail::saturating_add(clock::now(), after_);
        impl_.emplace(
            detail::run_with_timeout(clock::to_steady(deadline), detail::make_branch_task<S>(aw_)));
        awaiter_.emplace(std::move(*impl_).operator co_await());
        return awaiter_->await_suspend(h);
    }

    output_type await_resume() {
        if constexpr (awaiter<stored_type>) {
            if (ready_) {
                if constexpr (std::is_void_v<value_type>) {
                    aw_.await_resume();
                    return output_type();
                } else {
                    return output_type(aw_.await_resume());
                }
            }
        }
        return awaiter_->await_resume();
    }

private:
    S aw_;
    std::chrono::nanoseconds after_{};
    std::optional<instant> deadline_;
    bool ready_ = false;
    std::optional<task<output_type>> impl_;
    std::optional<typename task<output_type>::awaiter> awaiter_;
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
