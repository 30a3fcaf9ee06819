#pragma once
// Test helpers for running a scenario on both runtime flavors.

#include <eddy/runtime.hpp>
#include <eddy/task.hpp>
#include <eddy/yield_now.hpp>

namespace eddy::test {

inline eddy::runtime current_thread_rt() {
    return eddy::runtime::builder::current_thread().build();
}

/// Two workers, so that tasks really run in parallel on the 2-core test machines.
inline eddy::runtime multi_thread_rt() {
    return eddy::runtime::builder::multi_thread().worker_threads(2).build();
}

/// `multi_thread_rt()` when `multi`, else `current_thread_rt()`.
inline eddy::runtime make_rt(bool multi) {
    return multi ? multi_thread_rt() : current_thread_rt();
}

/// Yields a few times, so that the other ready tasks of a current-thread runtime run until they
/// suspend (spawned tasks reach their first suspension).
inline eddy::task<> settle(int rounds = 4) {
    for (int i = 0; i < rounds; ++i)
        co_await eddy::yield_now();
}

} // namespace eddy::test
