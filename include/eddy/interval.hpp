#pragma once
//! `eddy::interval`: a timer that ticks every `period`.
//!
//! ```cpp
//! eddy::interval every(100ms);
//! for (;;) {
//!     co_await every.tick();      // the first tick completes at once
//!     co_await report();
//! }
//! ```
//!
//! `tick()` completes at the next scheduled instant and returns it; the first is the start
//! (`interval(period)`: now, `interval_at(start, period)`: start). When ticks were missed (the
//! task was busy for longer than a period), `missed_tick_behavior` decides the following ones, as
//! Tokio's does (with a tick falling more than 5 ms behind counting as missed):
//! - `burst` (default): fire the missed ticks back to back until caught up, then keep the
//!   original schedule;
//! - `delay`: the next tick is one period after the late one actually fired;
//! - `skip`: drop the missed ticks and continue on the original grid (the next multiple of
//!   `period` after now).
//!
//! `tick()` is cancel-safe: a tick cancelled before it completes is not consumed (the next
//! `tick()` completes at the same instant). An interval is used by one task at a time.

#include <eddy/config.hpp>

#include <eddy/clock.hpp>
#include <eddy/sleep.hpp>

#include <chrono>
#include <coroutine>
#include <stdexcept>

namespace eddy {

enum class missed_tick_behavior { burst, delay, skip };

class interval {
public:
    /// Ticks now, then every `period` (> 0, else `std::invalid_argument`).
    explicit interval(clock::duration period) : interval(clock::now(), period) {}

    /// Ticks at `start`, then every `period` (> 0).
    interval(instant start, clock::duration period) : next_(start), period_(period) {
        if (period <= clock::duration::zero())
            throw std::invalid_argument("eddy::interval: the period must be positive");
    }

    class [[nodiscard]] tick_operation {
    public:
        explicit tick_operation(interval& iv) noexcept : iv_(iv), sleep_(iv.next_) {}
        bool await_ready() noexcept { return sleep_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return sleep_.await_suspend(h); }
        /// The instant this tick was scheduled for.
        instant await_resume() { return iv_.advance(sleep_.deadline()); }

    private:
        interval& iv_;
        sleep_operation sleep_;
    };

    /// Completes at the next tick; returns its scheduled instant.
    tick_operation tick() noexcept { return tick_operation(*this); }

    /// Restarts the schedule: the next tick one period from now.
    void reset() { next_ = clock::now() + period_; }
    /// The next tick now.
    void reset_immediately() { next_ = clock::now(); }
    /// The next tick at `t`.
    void reset_at(instant t) noexcept { next_ = t; }

    [[nodiscard]] clock::duration period() const noexcept { return period_; }
    [[nodiscard]] instant next_tick() const noexcept { return next_; }
    [[nodiscard]] missed_tick_behavior behavior() const noexcept { return behavior_; }
    void set_missed_tick_behavior(missed_tick_behavior b) noexcept { behavior_ = b; }

    /// How late a tick may complete before it counts as missed.
    static constexpr clock::duration missed_after = std::chrono::milliseconds(5);

private:
    instant advance(instant scheduled) {
        const instant now = clock::now();
        if (now <= scheduled + missed_after) {
            next_ = scheduled + period_;
        } else {
            switch (behavior_) {
            case missed_tick_behavior::burst:
                next_ = scheduled + period_;
                break;
            case missed_tick_behavior::delay:
                next_ = now + period_;
                break;
            case missed_tick_behavior::skip:
                next_ = now + period_ - (now - scheduled) % period_;
                break;
            }
        }
        return scheduled;
    }

    instant next_;
    clock::duration period_;
    missed_tick_behavior behavior_ = missed_tick_behavior::burst;
};

/// An interval whose first tick is at `start`.
inline interval interval_at(instant start, clock::duration period) {
    return interval(start, period);
}

} // namespace eddy
