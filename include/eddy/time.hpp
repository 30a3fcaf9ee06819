#pragma once
//! Controlling a runtime's clock in tests: `eddy::time::pause()`, `advance(d)`, `resume()`.
//!
//! ```cpp
//! auto rt = eddy::runtime::builder::current_thread().start_paused(true).build();
//! rt.block_on([]() -> eddy::task<> {
//!     auto start = eddy::clock::now();
//!     co_await eddy::sleep(1h);                 // returns at once: the clock auto-advances
//!     assert(eddy::clock::now() - start == 1h);
//! });
//! ```
//!
//! While paused, `clock::now()` stands still except when moved:
//! - `co_await time::advance(d)` moves it forward by `d`, fires the timers now due, and yields so
//!   the tasks they woke run before the caller continues;
//! - auto-advance: when every task is idle (nothing to run, no `spawn_blocking` closure in flight),
//!   the runtime jumps the clock to the next timer instead of sleeping. So a test of a one-hour
//!   backoff runs in microseconds and the same way every time.
//! Pausing rounds the clock up to its next millisecond tick, so `sleep(10ms)` then
//! `advance(10ms)` fires exactly. `resume()` lets the clock run again from where it stood.
//!
//! The paused clock belongs to a runtime and needs the current-thread flavor (as Tokio's): with
//! several workers "every task is idle" has no cheap, exact answer. Called outside a runtime, on
//! a multi-thread runtime, or in the wrong state (pausing twice), these throw `std::logic_error`.

#include <eddy/config.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>

#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <string>

namespace eddy::time {

namespace detail {

inline eddy::detail::runtime_core& paused_clock_runtime(const char* what) {
    eddy::detail::runtime_core* rt = eddy::detail::context().runtime;
    if (rt == nullptr) {
        throw std::logic_error(std::string("eddy::time::") + what +
                               ": not called from a runtime's thread");
    }
    if (!rt->single_threaded()) {
        throw std::logic_error(std::string("eddy::time::") + what +
                               ": the paused clock requires a current-thread runtime");
    }
    return *rt;
}

} // namespace detail

/// Stops the current runtime's clock. See the header comment.
inline void pause() {
    detail::paused_clock_runtime("pause").time().source().pause();
}

/// Lets the current runtime's paused clock run again from where it stands.
inline void resume() {
    detail::paused_clock_runtime("resume").time().source().resume();
}

/// True when the current runtime's clock is paused (false outside a runtime).
[[nodiscard]] inline bool is_paused() noexcept {
    eddy::detail::runtime_core* rt = eddy::detail::context().runtime;
    return rt != nullptr && rt->time().source().paused();
}

class [[nodiscard]] advance_operation {
public:
    explicit advance_operation(std::chrono::nanoseconds d) noexcept : by_(d) {}

    bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> h) const {
        eddy::detail::runtime_core& rt = detail::paused_clock_runtime("advance");
        rt.time().source().advance(by_);
        rt.time().process();
        // Behind the tasks the timers just woke.
        eddy::detail::coop::yield_current(h);
    }

    void await_resume() const noexcept {}

private:
    std::chrono::nanoseconds by_;
};

/// Moves the paused clock forward by `d` (>= 0), fires the timers due by then and lets the tasks
/// they woke run; `co_await` it.
template <class Rep, class Period>
advance_operation advance(std::chrono::duration<Rep, Period> d) {
    return advance_operation(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

} // namespace eddy::time
