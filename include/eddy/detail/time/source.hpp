#pragma once
//! A runtime's source of time: the monotonic clock, or a paused clock for tests.
//!
//! Time is kept as `std::chrono::steady_clock` time points (eddy::clock wraps them). The timer
//! wheel counts in 1 ms ticks from `origin()`, the moment the source was created: a deadline maps
//! to the first tick at or after it (timers never fire early), the current time to the last tick
//! at or before it.
//!
//! Paused: `now()` stands still until `advance` moves it; `resume` lets it run again from where it
//! stood (later readings continue from the paused time, not from the real clock). Pausing rounds
//! the frozen time up to the next tick boundary, so `sleep(10ms)` followed by `advance(10ms)`
//! fires exactly. Any thread may read `now()`; pause/advance/resume come from the runtime's tasks.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>

namespace eddy::detail {

class time_source {
public:
    using steady = std::chrono::steady_clock;
    using time_point = steady::time_point;
    using duration = std::chrono::nanoseconds;
    static constexpr duration tick = std::chrono::milliseconds(1);
    /// Farther than any deadline a program means (about 146 years): deadlines saturate here.
    static constexpr duration far_future = duration(std::int64_t{1} << 62);

    explicit time_source(bool start_paused = false) : origin_(steady::now()) {
        if (start_paused) {
            frozen_.store(origin_.time_since_epoch().count(), memory_order_relaxed);
            paused_.store(true, memory_order_relaxed);
        }
    }

    [[nodiscard]] time_point now() const noexcept {
        // ORDERING: acquire pairs with the release stores in pause/advance/resume.
        if (paused_.load(memory_order_acquire))
            return time_point(duration(frozen_.load(memory_order_acquire)));
        return steady::now() + duration(offset_.load(memory_order_acquire));
    }

    [[nodiscard]] bool paused() const noexcept { return paused_.load(memory_order_acquire); }

    void pause() {
        std::lock_guard lock(mutex_);
        if (paused_.load(memory_order_relaxed))
            throw std::logic_error("eddy::time::pause: the clock is already paused");
        const time_point t = instant_of(tick_at_or_after(now()));
        frozen_.store(t.time_since_epoch().count(), memory_order_release);
        paused_.store(true, memory_order_release);
    }

    void resume() {
        std::lock_guard lock(mutex_);
        if (!paused_.load(memory_order_relaxed))
            throw std::logic_error("eddy::time::resume: the clock is not paused");
        const auto frozen = duration(frozen_.load(memory_order_relaxed));
        offset_.store((frozen - steady::now().time_since_epoch()).count(), memory_order_release);
        paused_.store(false, memory_order_release);
    }

    /// Moves a paused clock forward by `d` (>= 0).
    void advance(duration d) {
        if (d < duration::zero())
            throw std::invalid_argument("eddy::time::advance: negative duration");
        std::lock_guard lock(mutex_);
        if (!paused_.load(memory_order_relaxed))
            throw std::logic_error("eddy::time::advance: the clock is not paused");
        frozen_.store(frozen_.load(memory_order_relaxed) + d.count(), memory_order_release);
    }

    /// Moves a paused clock forward to `t` if it stands before it (auto-advance).
    void advance_to(time_point t) noexcept {
        std::lock_guard lock(mutex_);
        if (paused_.load(memory_order_relaxed) &&
            frozen_.load(memory_order_relaxed) < t.time_since_epoch().count()) {
            frozen_.store(t.time_since_epoch().count(), memory_order_release);
        }
    }

    [[nodiscard]] time_point origin() const noexcept { return origin_; }

    /// The first tick at or after `t` (0 for anything before the origin). Saturates centuries
    /// ahead rather than overflowing.
    [[nodiscard]] std::uint64_t tick_at_or_after(time_point t) const noexcept {
        if (t <= origin_)
            return 0;
        const auto since = t - origin_;
        if (since >= far_future)
            return static_cast<std::uint64_t>(far_future / tick);
        return static_cast<std::uint64_t>((since + tick - duration(1)) / tick);
    }

    /// The last tick at or before `t`.
    [[nodiscard]] std::uint64_t tick_at_or_before(time_point t) const noexcept {
        if (t <= origin_)
            return 0;
        return static_cast<std::uint64_t>((t - origin_) / tick);
    }

    [[nodiscard]] std::uint64_t now_tick() const noexcept { return tick_at_or_before(now()); }

    [[nodiscard]] time_point instant_of(std::uint64_t t) const noexcept {
        return origin_ + static_cast<std::int64_t>(t) * tick;
    }

private:
    const time_point origin_;
    atomic<bool> paused_{false};
    atomic<std::int64_t> frozen_{0}; ///< while paused: now(), in steady nanoseconds
    atomic<std::int64_t> offset_{0}; ///< while running: now() - steady::now(), after a resume
    std::mutex mutex_;               ///< serializes pause/advance/resume
};

} // namespace eddy::detail
