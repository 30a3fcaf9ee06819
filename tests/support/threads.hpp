#pragma once
// Test helpers for code that starts threads: bounded waiting for a condition, and counting the
// process's OS threads (to prove a pool joined everything it started).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <thread>

namespace eddy::test {

/// Polls `pred` every millisecond until it holds or `limit` passes; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

/// Threads of this process, from /proc.
inline std::size_t os_thread_count() {
    const auto it = std::filesystem::directory_iterator("/proc/self/task");
    return static_cast<std::size_t>(std::distance(begin(it), end(it)));
}

/// The process's thread count before a test starts threads. Starts and joins one thread first,
/// so that helper threads a sanitizer runtime starts with the first thread are already counted.
inline std::size_t baseline_thread_count() {
    std::thread([] {}).join();
    return os_thread_count();
}

} // namespace eddy::test
