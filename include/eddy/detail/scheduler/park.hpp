#pragma once
//! Parking a scheduler thread until there is work: an atomic state plus a mutex and condition
//! variable that are only touched when the thread really sleeps.
//!
//! States: EMPTY (0) nobody parked, no token; PARKED (1) the owner sleeps; NOTIFIED (2) a token is
//! waiting. `unpark` leaves a token, so an unpark that races ahead of `park` is never lost: the
//! following `park` consumes the token and returns at once.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace eddy::detail {

class parker {
public:
    /// Owner thread only. Returns after an unpark (possibly one that came before the call).
    void park() {
        std::uint32_t expected = notified_state;
        // ORDERING: acquire pairs with the release exchange in unpark: the work queued before the
        // unpark is visible once the token is consumed.
        if (state_.compare_exchange_strong(expected, empty_state, memory_order_acquire))
            return;
        std::unique_lock lock(mutex_);
        expected = empty_state;
        if (!state_.compare_exchange_strong(expected, parked_state, memory_order_acq_rel)) {
            // A token arrived between the two checks.
            state_.store(empty_state, memory_order_release);
            return;
        }
        for (;;) {
            cv_.wait(lock);
            expected = notified_state;
            if (state_.compare_exchange_strong(expected, empty_state, memory_order_acquire)) {
                return;
            }
            // Spurious wake-up: still PARKED.
        }
    }

    /// Any thread.
    void unpark() {
        // ORDERING: release publishes the work queued before this call to the parked thread.
        const std::uint32_t prev = state_.exchange(notified_state, memory_order_acq_rel);
        if (prev == parked_state) {
            // Taking the lock orders this notify after the sleeper's wait began.
            { std::lock_guard lock(mutex_); }
            cv_.notify_one();
        }
    }

private:
    static constexpr std::uint32_t empty_state = 0;
    static constexpr std::uint32_t parked_state = 1;
    static constexpr std::uint32_t notified_state = 2;

    atomic<std::uint32_t> state_{empty_state};
    std::mutex mutex_;
    std::condition_variable cv_;
};

} // namespace eddy::detail
