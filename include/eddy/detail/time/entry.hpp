#pragma once
//! One timer registration, intrusive in the awaitable that waits for it (no allocation per
//! sleep). The wheel links it into a slot's list; `deadline` is in wheel ticks (milliseconds since
//! the wheel's origin); `sequence` orders entries with equal deadlines by registration.
//!
//! Ownership: the wheel's lock (or its single owning thread) guards every field while the entry
//! is registered; the awaitable owns it otherwise and must `remove` it before it dies.

#include <eddy/config.hpp>

#include <cstdint>

namespace eddy::detail {

struct timer_entry {
    std::uint64_t deadline = 0;
    std::uint64_t sequence = 0;
    timer_entry* prev = nullptr;
    timer_entry* next = nullptr;
    std::uint8_t level = 0;
    std::uint8_t slot = 0;
    bool registered = false;

    timer_entry() noexcept = default;
    timer_entry(const timer_entry&) = delete;
    timer_entry& operator=(const timer_entry&) = delete;
};

/// An intrusive FIFO list of timer entries (one wheel slot, or a batch of expired entries).
class timer_list {
public:
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

    void push_back(timer_entry* e) noexcept {
        e->next = nullptr;
        e->prev = tail_;
        if (tail_ != nullptr) {
            tail_->next = e;
        } else {
            head_ = e;
        }
        tail_ = e;
    }

    void remove(timer_entry* e) noexcept {
        if (e->prev != nullptr) {
            e->prev->next = e->next;
        } else {
            head_ = e->next;
        }
        if (e->next != nullptr) {
            e->next->prev = e->prev;
        } else {
            tail_ = e->prev;
        }
        e->prev = e->next = nullptr;
    }

    [[nodiscard]] timer_entry* pop_front() noexcept {
        timer_entry* e = head_;
        if (e != nullptr)
            remove(e);
        return e;
    }

    /// Empties the list in O(1) and returns its first entry; the entries stay chained through
    /// `next` (the caller unlinks each as it walks them).
    [[nodiscard]] timer_entry* take_all() noexcept {
        timer_entry* e = head_;
        head_ = tail_ = nullptr;
        return e;
    }

    /// Moves every entry of `other` to the end of this list.
    void splice_back(timer_list& other) noexcept {
        while (timer_entry* e = other.pop_front())
            push_back(e);
    }

private:
    timer_entry* head_ = nullptr;
    timer_entry* tail_ = nullptr;
};

} // namespace eddy::detail
