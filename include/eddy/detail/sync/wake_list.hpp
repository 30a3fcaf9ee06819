#pragma once
//! `wake_list`: a fixed-capacity batch of wakers taken out of a primitive's waiter queue under its
//! lock and woken after the lock is released.
//!
//! The synchronization primitives never wake while holding their lock: waking schedules a task
//! (queue pushes, perhaps a futex call), and a woken task on another worker would only spin on the
//! lock it is about to need. The batch lives on the stack, so releasing waiters allocates nothing;
//! a caller with more waiters than `capacity` unlocks, wakes the batch, relocks and goes on.
//!
//! Not thread-safe: one thread fills and drains a list.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <array>
#include <cstddef>
#include <utility>

namespace eddy::detail {

class wake_list {
public:
    static constexpr std::size_t capacity = 32;

    wake_list() noexcept = default;
    wake_list(const wake_list&) = delete;
    wake_list& operator=(const wake_list&) = delete;
    /// Wakes whatever is left, so a caller that returns early loses nothing.
    ~wake_list() { wake_all(); }

    [[nodiscard]] bool full() const noexcept { return size_ == capacity; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// Takes `w` (an empty waker is skipped: the waiter has nobody to wake yet). Must not be full.
    void push(waker&& w) noexcept {
        EDDY_ASSERT(!full());
        if (w)
            wakers_[size_++] = std::move(w);
    }

    /// Wakes and empties the batch. Call it with no lock held.
    void wake_all() noexcept {
        for (std::size_t i = 0; i < size_; ++i)
            wakers_[i].wake();
        size_ = 0;
    }

private:
    std::array<waker, capacity> wakers_;
    std::size_t size_ = 0;
};

} // namespace eddy::detail
