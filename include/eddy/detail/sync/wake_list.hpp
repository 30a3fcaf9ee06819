#pragma once
//! `wake_list`: wakers taken out of a primitive's or channel's waiter queue under its lock and
//! woken after the lock is released.
//!
//! Nothing wakes while holding such a lock: waking schedules a task (queue pushes, perhaps a futex
//! call, perhaps freeing the task), and a woken task on another worker would only spin on the lock
//! it is about to need. And a waiter's memory may be gone the moment the lock is released (its
//! task was cancelled), so the wakers are moved out while the lock is held. The first `capacity`
//! wakers live on the stack; more spill to the heap, unless the caller flushes when `full()`
//! (unlock, wake the batch, relock) to allocate nothing. The destructor wakes whatever is left:
//! declare the list before the lock guard, so the guard unlocks first.
//!
//! Not thread-safe: one thread fills and drains a list.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

namespace eddy::detail {

class wake_list {
public:
    static constexpr std::size_t capacity = 32;

    wake_list() noexcept = default;
    wake_list(const wake_list&) = delete;
    wake_list& operator=(const wake_list&) = delete;
    /// Wakes whatever is left, so a caller that returns early loses nothing.
    ~wake_list() { wake_all(); }

    /// The inline batch is full: the next push allocates.
    [[nodiscard]] bool full() const noexcept { return size_ >= capacity; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0 && more_.empty(); }

    /// Takes `w` (an empty waker is skipped: the waiter has nobody to wake yet). Beyond
    /// `capacity` it spills to the heap (which can throw `std::bad_alloc`).
    void push(waker&& w) {
        if (!w)
            return;
        if (size_ < capacity) {
            wakers_[size_++] = std::move(w);
        } else {
            more_.push_back(std::move(w));
        }
    }

    /// Wakes and empties the list. Call it with no lock held.
    void wake_all() noexcept {
        for (std::size_t i = 0; i < size_; ++i)
            wakers_[i].wake();
        size_ = 0;
        for (waker& w : more_)
            w.wake();
        more_.clear();
    }

private:
    std::array<waker, capacity> wakers_;
    std::vector<waker> more_;
    std::size_t size_ = 0;
};

} // namespace eddy::detail
