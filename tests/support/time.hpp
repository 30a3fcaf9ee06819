#pragma once
// Test helpers for the time layer: a runtime on a paused clock, and its timer count.

#include <eddy/runtime.hpp>

#include <chrono>
#include <cstddef>
#include <thread>

namespace eddy::test {

/// A current-thread runtime whose clock starts paused: time-based tests run instantly.
inline eddy::runtime paused_runtime() {
    return eddy::runtime::builder::current_thread().start_paused(true).build();
}

/// Timers registered with `rt` now.
inline std::size_t active_timers(const eddy::runtime& rt) {
    return rt.get_handle().metrics().active_timers;
}

/// Waits (up to 2 s of real time) until `rt` has exactly `n` timers registered.
inline bool timers_settle_at(const eddy::runtime& rt, std::size_t n) {
    for (int i = 0; i < 2000 && active_timers(rt) != n; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return active_timers(rt) == n;
}

} // namespace eddy::test
