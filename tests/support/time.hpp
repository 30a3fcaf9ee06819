#pragma once
// Test helpers for the time layer: a runtime on a paused clock, and its timer count.

#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

#include <chrono>
#include <cstddef>
#include <thread>
#include <utility>

#include "support/manual_event.hpp"

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

/// Sleeps `d`, then returns `v`.
inline eddy::task<int> value_after(std::chrono::milliseconds d, int v) {
    co_await eddy::sleep(d);
    co_return v;
}

/// `value_after` holding a drop counter, to prove the frame was destroyed (cancelled).
inline eddy::task<int> value_after_counted(std::chrono::milliseconds d, int v, drop_counter c) {
    const drop_counter held = std::move(c);
    co_await eddy::sleep(d);
    co_return v;
}

} // namespace eddy::test
