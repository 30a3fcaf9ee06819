#pragma once
//! A FIFO of task pointers in a growable ring buffer. Not thread-safe: the owner (a worker, or a
//! lock) serializes access. O(1) push and pop; the buffer doubles when full and is kept for reuse,
//! so a steady state allocates nothing. (Not intrusive on purpose: a link field in every task
//! header would cost 8 bytes per task for the rare task that sits in one of these queues.)

#include <eddy/config.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace eddy::detail {

struct task_header;

class task_queue {
public:
    task_queue() noexcept = default;
    task_queue(task_queue&& other) noexcept
        : buffer_(std::move(other.buffer_)),
          capacity_(std::exchange(other.capacity_, 0)),
          head_(std::exchange(other.head_, 0)),
          size_(std::exchange(other.size_, 0)) {}
    task_queue& operator=(task_queue&& other) noexcept {
        buffer_ = std::move(other.buffer_);
        capacity_ = std::exchange(other.capacity_, 0);
        head_ = std::exchange(other.head_, 0);
        size_ = std::exchange(other.size_, 0);
        return *this;
    }
    task_queue(const task_queue&) = delete;
    task_queue& operator=(const task_queue&) = delete;

    /// Appends `t`. Throws `std::bad_alloc` only when the ring must grow and memory is exhausted.
    void push_back(task_header* t) {
        if (size_ == capacity_)
            grow();
        buffer_[(head_ + size_) & (capacity_ - 1)] = t;
        ++size_;
    }

    [[nodiscard]] task_header* pop_front() noexcept {
        if (size_ == 0)
            return nullptr;
        task_header* t = buffer_[head_];
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
        return t;
    }

    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    void grow() {
        const std::size_t capacity = capacity_ == 0 ? 64 : 2 * capacity_;
        auto buffer = std::make_unique<task_header*[]>(capacity);
        for (std::size_t i = 0; i < size_; ++i)
            buffer[i] = buffer_[(head_ + i) & (capacity_ - 1)];
        buffer_ = std::move(buffer);
        capacity_ = capacity;
        head_ = 0;
    }

    std::unique_ptr<task_header*[]> buffer_;
    std::size_t capacity_ = 0; // zero or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace eddy::detail
