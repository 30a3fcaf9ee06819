#pragma once
//! The list of every live task a scheduler has polled at least once, so that shutdown can find
//! and cancel each of them. Intrusive (doubly linked through the header), O(1) insert and remove.
//! Not thread-safe: the scheduler serializes access (its own thread, or a lock).

#include <eddy/config.hpp>

#include <eddy/detail/task/header.hpp>

#include <cstddef>

namespace eddy::detail {

class owned_tasks {
public:
    void push(task_header* t) noexcept {
        EDDY_ASSERT(!t->bound);
        t->bound = true;
        t->owned_prev = nullptr;
        t->owned_next = head_;
        if (head_ != nullptr)
            head_->owned_prev = t;
        head_ = t;
        ++size_;
    }

    void remove(task_header* t) noexcept {
        EDDY_ASSERT(t->bound);
        t->bound = false;
        if (t->owned_prev != nullptr) {
            t->owned_prev->owned_next = t->owned_next;
        } else {
            head_ = t->owned_next;
        }
        if (t->owned_next != nullptr)
            t->owned_next->owned_prev = t->owned_prev;
        t->owned_prev = t->owned_next = nullptr;
        --size_;
    }

    /// Unlinks and returns some task, or null when empty.
    [[nodiscard]] task_header* pop() noexcept {
        task_header* t = head_;
        if (t != nullptr)
            remove(t);
        return t;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

private:
    task_header* head_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace eddy::detail
