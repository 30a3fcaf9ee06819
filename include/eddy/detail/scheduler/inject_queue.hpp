#pragma once
//! The global queue: tasks spawned or woken from threads outside the scheduler (and, in the
//! multi-thread flavor, overflow from full local queues). Any thread pushes; the scheduler's
//! threads pop. A mutex guards the list; `len_` lets pollers skip the lock when it is empty.
//! Once closed (shutdown), pushes are refused and the caller keeps the task.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/task_queue.hpp>

#include <cstddef>
#include <mutex>

namespace eddy::detail {

class inject_queue {
public:
    /// False when closed: the task was not queued.
    [[nodiscard]] bool push(task_header* t) {
        std::lock_guard lock(mutex_);
        if (closed_)
            return false;
        queue_.push_back(t);
        // ORDERING: the mutex orders the list; len_ is only a hint read without it.
        len_.store(queue_.size(), memory_order_relaxed);
        return true;
    }

    /// Appends `tasks[0..n)` in order under one lock. False when closed: nothing was queued.
    [[nodiscard]] bool push_batch(task_header* const* tasks, std::size_t n) {
        std::lock_guard lock(mutex_);
        if (closed_)
            return false;
        for (std::size_t i = 0; i < n; ++i)
            queue_.push_back(tasks[i]);
        // ORDERING: as in push.
        len_.store(queue_.size(), memory_order_relaxed);
        return true;
    }

    [[nodiscard]] task_header* pop() {
        if (len_.load(memory_order_relaxed) == 0)
            return nullptr;
        std::lock_guard lock(mutex_);
        task_header* t = queue_.pop_front();
        len_.store(queue_.size(), memory_order_relaxed);
        return t;
    }

    /// Pops up to `max` tasks (oldest first) into `out` under one lock; returns how many.
    [[nodiscard]] std::size_t pop_batch(task_header** out, std::size_t max) {
        if (max == 0 || len_.load(memory_order_relaxed) == 0)
            return 0;
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        while (n < max) {
            task_header* t = queue_.pop_front();
            if (t == nullptr)
                break;
            out[n++] = t;
        }
        len_.store(queue_.size(), memory_order_relaxed);
        return n;
    }

    /// Refuses further pushes; what is queued stays poppable (for shutdown to drain).
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }

    [[nodiscard]] bool is_closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    [[nodiscard]] std::size_t len() const noexcept { return len_.load(memory_order_relaxed); }

private:
    mutable std::mutex mutex_;
    task_queue queue_;
    atomic<std::size_t> len_{0};
    bool closed_ = false;
};

} // namespace eddy::detail
