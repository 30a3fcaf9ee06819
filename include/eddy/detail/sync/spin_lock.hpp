#pragma once
//! A test-and-test-and-set spin lock for critical sections of a few instructions (linking a task
//! into a list), where a futex-based mutex costs more than the work it protects. Spins with a
//! pause hint, and yields the thread after a while so an unlucky holder that was descheduled can
//! run. Satisfies Lockable (use with std::lock_guard).

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <thread>

namespace eddy::detail {

class spin_lock {
public:
    void lock() noexcept {
        // ORDERING: acquire pairs with unlock's release: the previous holder's writes are visible
        // inside the critical section.
        if (!locked_.exchange(true, memory_order_acquire))
            return;
        lock_contended();
    }

    bool try_lock() noexcept {
        return !locked_.load(memory_order_relaxed) && !locked_.exchange(true, memory_order_acquire);
    }

    void unlock() noexcept {
        // ORDERING: release publishes the critical section to the next holder.
        locked_.store(false, memory_order_release);
    }

private:
    /// The first attempt failed: spin on a plain load (no cache-line ping-pong), then yield.
    [[gnu::noinline]] void lock_contended() noexcept {
        for (unsigned spins = 0;;) {
            while (locked_.load(memory_order_relaxed)) {
                if (++spins < 64) {
                    pause();
                } else {
                    std::this_thread::yield();
                }
            }
            // ORDERING: as in lock().
            if (!locked_.exchange(true, memory_order_acquire))
                return;
        }
    }

    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }

    atomic<bool> locked_{false};
};

} // namespace eddy::detail
