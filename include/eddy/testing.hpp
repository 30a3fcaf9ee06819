#pragma once
//! Test helpers for code built on eddy.
//!
//! `eddy::testing::cancel_at_every_suspension(make)` checks that an operation can be cancelled
//! cleanly wherever it suspends (invariant 2). `make()` returns a fresh awaitable each time. For
//! N = 1, 2, 3, ... the helper runs a fresh one inside the calling task and cancels it (destroys
//! its frame) right after its N-th suspension, until a run completes before reaching N. It returns
//! the number of suspension points it cancelled at; the completing run's value is dropped (an
//! exception from it propagates). Run it under ASan: a cancellation that leaves a registration
//! behind, double-frees or leaks shows up there; tests also check whatever invariants they can
//! afterwards (no timers left, the lock free, the message still queued).
//!
//! ```cpp
//! auto points = co_await eddy::testing::cancel_at_every_suspension([&] {
//!     return eddy::timeout(10ms, rx.recv());
//! });
//! CHECK(points >= 1);
//! ```
//!
//! Operations are woken as usual while the helper waits (timers fire, other tasks run), so an
//! operation that needs another task to make progress gets it. `max_points` bounds the number of
//! runs for operations that never finish.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/task/branch.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace eddy::testing {

template <class F>
requires std::is_invocable_v<F&> && awaitable<std::invoke_result_t<F&>> task<std::size_t>
cancel_at_every_suspension(F make, std::size_t max_points = 100'000) {
    using R = await_result_t<std::invoke_result_t<F&>>;
    for (std::size_t n = 1; n <= max_points; ++n) {
        detail::branch_task<R> body(detail::into_task(make()));
        detail::branch_set_ref set(1);
        set->start(0, body.handle());
        for (;;) {
            set->run_ready();
            if (body.done()) {
                static_cast<void>(detail::take_value(body));
                co_return n - 1;
            }
            if ((*set)[0].polls >= n)
                break; // suspended at point n: leaving destroys it there
            co_await set->wait();
        }
    }
    co_return max_points;
}

} // namespace eddy::testing
