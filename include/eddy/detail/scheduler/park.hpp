#pragma once
//! Parking a scheduler thread until there is work: one 32-bit atomic and a futex.
//!
//! States: EMPTY (0) nobody parked, no token; PARKED (1) the owner sleeps in the futex;
//! NOTIFIED (2) a token is waiting. `unpark` leaves a token, so an unpark that races ahead of
//! `park` is never lost: the following `park` consumes it and returns at once. `unpark` makes a
//! system call only when the owner really sleeps.
//!
//! Owner: `park`, `park_for`. Any thread: `unpark`. The happens-before edge between unpark and
//! the woken owner is carried by the state word (release exchange / acquire CAS), not by the
//! futex, so ThreadSanitizer sees it.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <chrono>
#include <cstdint>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace eddy::detail {

class parker {
public:
    /// Sleeps until unparked (possibly by an unpark that came before the call).
    void park() noexcept { park_impl(nullptr); }

    /// Like park, but returns after `timeout` at the latest. Returns true when unparked.
    bool park_for(std::chrono::nanoseconds timeout) noexcept {
        if (timeout <= std::chrono::nanoseconds::zero())
            return consume_token();
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
        timespec ts{};
        ts.tv_sec = static_cast<time_t>(secs.count());
        ts.tv_nsec = static_cast<long>((timeout - secs).count());
        return park_impl(&ts);
    }

    /// Any thread.
    void unpark() noexcept {
        // ORDERING: release publishes the work queued before this call to the woken owner, which
        // acquires in consume_token / park_impl.
        if (state_.exchange(notified_state, memory_order_acq_rel) == parked_state) {
            futex_wake();
        }
    }

private:
    static constexpr std::uint32_t empty_state = 0;
    static constexpr std::uint32_t parked_state = 1;
    static constexpr std::uint32_t notified_state = 2;

    bool consume_token() noexcept {
        std::uint32_t expected = notified_state;
        // ORDERING: acquire pairs with unpark's release.
        return state_.compare_exchange_strong(expected, empty_state, memory_order_acquire,
                                              memory_order_relaxed);
    }

    bool park_impl(const timespec* timeout) noexcept {
        if (consume_token())
            return true;
        std::uint32_t expected = empty_state;
        if (!state_.compare_exchange_strong(expected, parked_state, memory_order_acq_rel,
                                            memory_order_acquire)) {
            // A token arrived between the two steps (the only other state).
            EDDY_ASSERT(expected == notified_state);
            state_.store(empty_state, memory_order_relaxed);
            return true;
        }
        for (;;) {
            const long rc = futex_wait(parked_state, timeout);
            if (consume_token())
                return true;
            if (timeout != nullptr && rc != 0) {
                // Timed out (or interrupted): go back to EMPTY unless a token raced in.
                expected = parked_state;
                if (state_.compare_exchange_strong(expected, empty_state, memory_order_acq_rel,
                                                   memory_order_acquire)) {
                    return false;
                }
                EDDY_ASSERT(expected == notified_state);
                state_.store(empty_state, memory_order_relaxed);
                return true;
            }
            // Spurious wake-up: still PARKED, sleep again.
        }
    }

    long futex_wait(std::uint32_t expected, const timespec* timeout) noexcept {
        // A relative timeout: FUTEX_WAIT measures it on CLOCK_MONOTONIC.
        return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAIT_PRIVATE,
                         expected, timeout, nullptr, 0);
    }

    void futex_wake() noexcept {
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1,
                  nullptr, nullptr, 0);
    }

    static_assert(sizeof(atomic<std::uint32_t>) == sizeof(std::uint32_t));
    atomic<std::uint32_t> state_{empty_state};
};

} // namespace eddy::detail
