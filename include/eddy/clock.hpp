#pragma once
//! `eddy::clock` and `eddy::instant`: the monotonic clock timers are measured on.
//!
//! Inside a runtime's threads, `clock::now()` reads that runtime's clock, which tests can pause
//! and advance (see eddy/time.hpp); anywhere else it reads `std::chrono::steady_clock`. Both share
//! steady_clock's epoch, so an instant converts to and from a steady_clock time point (equal
//! while the clock was never paused).
//!
//! ```cpp
//! eddy::instant start = eddy::clock::now();
//! co_await eddy::sleep(10ms);
//! auto waited = eddy::clock::now() - start;   // >= 10ms
//! ```

#include <eddy/config.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>

#include <chrono>
#include <cstdint>
#include <ratio>

namespace eddy {

struct clock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::time_point<clock, duration>;
    static constexpr bool is_steady = true;

    /// The current runtime's time (paused or not), or steady_clock's outside a runtime.
    [[nodiscard]] static time_point now() noexcept {
        if (detail::runtime_core* rt = detail::context().runtime)
            return from_steady(rt->time().source().now());
        return from_steady(std::chrono::steady_clock::now());
    }

    [[nodiscard]] static time_point from_steady(std::chrono::steady_clock::time_point t) noexcept {
        return time_point(std::chrono::duration_cast<duration>(t.time_since_epoch()));
    }

    [[nodiscard]] static std::chrono::steady_clock::time_point to_steady(time_point t) noexcept {
        return std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch()));
    }
};

/// A point in time on `eddy::clock`.
using instant = clock::time_point;

namespace detail {

/// `t + d`, saturating at `instant::max()` instead of overflowing (a sleep of `hours::max()`
/// sleeps "forever"); a negative `d` counts as zero (already due).
template <class Rep, class Period>
instant saturating_add(instant t, std::chrono::duration<Rep, Period> d) noexcept {
    if (d <= std::chrono::duration<Rep, Period>::zero())
        return t;
    using wide = std::chrono::duration<long double, std::nano>;
    if (wide(d) >= wide(instant::max() - t))
        return instant::max();
    return t + std::chrono::duration_cast<std::chrono::nanoseconds>(d);
}

} // namespace detail
} // namespace eddy
