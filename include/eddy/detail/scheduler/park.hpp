#pragma once
//! Parking a scheduler thread until there is work: one 32-bit atomic and a futex.
//!
//! States: EMPTY (0) nobody parked, no token; PARKED (1) the owner sleeps in the futex;
//! NOTIFIED (2) a token is waiting. `unpark` leaves a token, so an unpark that races ahead of
//! `park` is never lost: the following `park` consumes it and returns at once. `unpark` makes a
//! system call only when the owner really sleeps.
//!
//! Owner: `park`, `park_for`, `park_in`. Any thread: `unpark`. The happens-before edge between
//! unpark and the woken owner is carried by the state word (release exchange / acquire CAS), not
//! by the futex, so ThreadSanitizer sees it.
//!
//! `park_in(driver, timeout)` sleeps in a driver (the I/O driver's epoll_wait or io_uring wait)
//! instead of the futex: the state is then IN_DRIVER (3), and `unpark` wakes the driver (an
//! eventfd write) instead of the futex.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace eddy::detail {

/// Something a parked thread can sleep in instead of a futex: the I/O driver.
class park_driver {
public:
    /// Sleeps until an event, `wake()`, or `timeout` (none: no limit), and dispatches the events.
    /// Returns the number of events dispatched. One thread at a time.
    virtual std::size_t wait(std::optional<std::chrono::nanoseconds> timeout) noexcept = 0;
    /// Any thread: makes the current (or next) `wait` return soon.
    virtual void wake() noexcept = 0;
    /// Dispatches the events that are ready, without blocking. Returns how many.
    virtual std::size_t poll() noexcept = 0;

protected:
    ~park_driver() = default;
};

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

    /// Sleeps in `driver` until it has events, `timeout` passes or `unpark` is called. Returns
    /// true when unparked (the token is consumed).
    ///
    /// With `spin`, first polls the driver (without sleeping) for up to that long: a reply that
    /// arrives within microseconds is then picked up without the cost of sleeping and being
    /// woken on another CPU (tens of microseconds on a VM). Between polls the thread yields
    /// (sched_yield), and a yield that ran another thread ends the spin: on a machine with no
    /// core to spare, the peer the worker waits for runs first and the spin takes no more of
    /// its time. What the spin took comes off `timeout`.
    bool park_in(park_driver& driver, std::optional<std::chrono::nanoseconds> timeout,
                 std::chrono::nanoseconds spin = std::chrono::nanoseconds::zero()) {
        if (consume_token())
            return true;
        if (timeout && *timeout < spin)
            spin = *timeout;
        if (spin > std::chrono::nanoseconds::zero()) {
            using clock = std::chrono::steady_clock;
            const clock::time_point start = clock::now();
            const clock::time_point until = start + spin;
            for (clock::time_point now = start; now < until;) {
                if (driver.poll() > 0)
                    return false;
                if (consume_token())
                    return true;
                ::sched_yield();
                const clock::time_point before = now;
                now = clock::now();
                if (now - before > yield_gave_way)
                    break; // another thread needed this CPU: spinning on would take its time
            }
            if (timeout)
                *timeout -= std::min(*timeout, clock::now() - start);
        }
        driver_.store(&driver, memory_order_relaxed);
        std::uint32_t expected = empty_state;
        // ORDERING: release publishes driver_ to unpark's acquire exchange.
        if (!state_.compare_exchange_strong(expected, in_driver_state, memory_order_acq_rel,
                                            memory_order_acquire)) {
            EDDY_ASSERT(expected == notified_state);
            state_.store(empty_state, memory_order_relaxed);
            return true;
        }
        driver.wait(timeout);
        // An unpark that lands between wait() returning and this exchange still wakes the
        // driver: its next wait returns at once, which costs one spurious turn and loses nothing.
        // ORDERING: acquire pairs with unpark's release.
        return state_.exchange(empty_state, memory_order_acq_rel) == notified_state;
    }

    /// Any thread.
    void unpark() noexcept {
        // ORDERING: release publishes the work queued before this call to the woken owner, which
        // acquires in consume_token / park_impl.
        const std::uint32_t prev = state_.exchange(notified_state, memory_order_acq_rel);
        if (prev == parked_state) {
            futex_wake();
        } else if (prev == in_driver_state) {
            driver_.load(memory_order_relaxed)->wake();
        }
    }

private:
    static constexpr std::uint32_t empty_state = 0;
    static constexpr std::uint32_t parked_state = 1;
    static constexpr std::uint32_t notified_state = 2;
    static constexpr std::uint32_t in_driver_state = 3;

    /// A spin's poll and yield that took longer than this ran another thread in between.
    static constexpr std::chrono::microseconds yield_gave_way{20};

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
    /// Set by the owner before entering IN_DRIVER. Atomic because a late unparker may still read
    /// it when the owner parks again (always the same driver).
    atomic<park_driver*> driver_{nullptr};
};

} // namespace eddy::detail
