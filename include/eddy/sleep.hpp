#pragma once
//! `eddy::sleep(d)` and `eddy::sleep_until(t)`: suspend the current task until a deadline.
//!
//! ```cpp
//! co_await eddy::sleep(100ms);
//! co_await eddy::sleep_until(eddy::clock::now() + 1s);
//! ```
//!
//! The deadline is fixed when the sleep is created (`sleep(d)` means "d from now"). Timers have
//! 1 ms resolution and never fire early: the task resumes on the first millisecond tick at or
//! after the deadline, as soon after it as the runtime gets to it. A deadline that has already
//! passed completes without suspending (spending cooperative budget, see coop.hpp). Deadlines
//! further than about two years ahead are waited for in steps of the wheel's range.
//!
//! Cancel-safe: if the sleeping task is cancelled (aborted, shut down, a select or timeout it is
//! in finishes first), the sleep's destructor removes its timer; nothing is left registered.
//! Registering costs no allocation: the timer lives in the sleep object. Must be awaited inside a
//! task of an eddy runtime (otherwise `std::logic_error`).

#include <eddy/config.hpp>

#include <eddy/clock.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/time/timer.hpp>

#include <chrono>
#include <coroutine>

namespace eddy {

class [[nodiscard]] sleep_operation {
public:
    explicit sleep_operation(instant deadline) noexcept : deadline_(deadline) {}

    /// Copies the deadline: a sleep is only moved before it is awaited.
    sleep_operation(sleep_operation&& other) noexcept : deadline_(other.deadline_) {}
    sleep_operation& operator=(sleep_operation&&) = delete;
    sleep_operation(const sleep_operation&) = delete;
    sleep_operation& operator=(const sleep_operation&) = delete;

    [[nodiscard]] instant deadline() const noexcept { return deadline_; }

    /// True once the deadline has passed.
    [[nodiscard]] bool is_elapsed() const noexcept { return clock::now() >= deadline_; }

    /// Changes the deadline. Only between awaits (not while a task is suspended on it).
    void reset(instant deadline) noexcept {
        timer_.cancel();
        deadline_ = deadline;
    }

    bool await_ready() const noexcept { return is_elapsed() && detail::coop::try_consume(); }

    bool await_suspend(std::coroutine_handle<> h) {
        waker w = current_waker(h); // throws outside a task
        if (is_elapsed()) {
            // Due, but await_ready found the budget spent: yield first.
            w.reset();
            detail::coop::yield_current(h);
            return true;
        }
        // False: due by the wheel's clock, go on.
        return timer_.arm(clock::to_steady(deadline_), w);
    }

    void await_resume() const noexcept {}

private:
    instant deadline_;
    detail::timer timer_;
};

/// Completes at `deadline`. See the header comment.
inline sleep_operation sleep_until(instant deadline) noexcept {
    return sleep_operation(deadline);
}

/// Completes `d` after now (a zero or negative `d` is already due). See the header comment.
template <class Rep, class Period>
sleep_operation sleep(std::chrono::duration<Rep, Period> d) noexcept {
    return sleep_operation(detail::saturating_add(clock::now(), d));
}

} // namespace eddy
