#pragma once
//! An intrusive FIFO of tasks linked through `task_header::queue_next`. Not thread-safe: the
//! owner (a worker, or a lock) serializes access. O(1) push and pop, no allocation.

#include <eddy/config.hpp>

#include <eddy/detail/task/header.hpp>

#include <cstddef>

namespace eddy::detail {

class task_queue {
public:
    task_queue() noexcept = default;
    task_queue(const task_queue&) = delete;
    task_queue& operator=(const task_queue&) = delete;

    void push_back(task_header* t) noexcept {
        t->queue_next = nullptr;
        if (tail_ != nullptr) {
            tail_->queue_next = t;
        } else {
            head_ = t;
        }
        tail_ = t;
        ++size_;
    }

    [[nodiscard]] task_header* pop_front() noexcept {
        task_header* t = head_;
        if (t == nullptr)
            return nullptr;
        head_ = t->queue_next;
        if (head_ == nullptr)
            tail_ = nullptr;
        t->queue_next = nullptr;
        --size_;
        return t;
    }

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    task_header* head_ = nullptr;
    task_header* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace eddy::detail
