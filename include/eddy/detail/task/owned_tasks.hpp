#pragma once
//! The list of every live task a scheduler has polled at least once, so that shutdown can find
//! and cancel each of them. Intrusive (doubly linked through the header), O(1) insert and remove.
//! Not thread-safe: the scheduler serializes access (its own thread, or a lock).

#include <eddy/config.hpp>

#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/header.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace eddy::detail {

class owned_tasks {
public:
    owned_tasks() noexcept { sentinel_.owned_prev = sentinel_.owned_next = &sentinel_; }
    owned_tasks(const owned_tasks&) = delete;
    owned_tasks& operator=(const owned_tasks&) = delete;

    /// Whether `t` is linked into an owned list (a linked task has a non-null `owned_prev`).
    static bool is_linked(const task_header* t) noexcept { return t->owned_prev != nullptr; }

    void push(task_header* t) noexcept {
        EDDY_ASSERT(!is_linked(t));
        t->owned_prev = &sentinel_;
        t->owned_next = sentinel_.owned_next;
        sentinel_.owned_next->owned_prev = t;
        sentinel_.owned_next = t;
        ++size_;
    }

    void remove(task_header* t) noexcept {
        EDDY_ASSERT(is_linked(t));
        t->owned_prev->owned_next = t->owned_next;
        t->owned_next->owned_prev = t->owned_prev;
        t->owned_prev = t->owned_next = nullptr;
        --size_;
    }

    /// Unlinks and returns some task, or null when empty.
    [[nodiscard]] task_header* pop() noexcept {
        task_header* t = sentinel_.owned_next;
        if (t == &sentinel_)
            return nullptr;
        remove(t);
        return t;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

private:
    task_header sentinel_{0}; // circular list: the sentinel's links are never null
    std::size_t size_ = 0;
};

/// Owned tasks shared by several threads: shards chosen by task id, one spin lock each (the
/// critical sections are a few pointer writes), so workers binding and completing different
/// tasks rarely meet on a lock. `bind` fails once closed
/// (shutdown), which tells the spawner to cancel the task on the spot.
class sharded_owned_tasks {
public:
    explicit sharded_owned_tasks(std::uint32_t min_shards)
        : mask_(round_up_pow2(min_shards) - 1), shards_(new shard[mask_ + 1]) {}

    [[nodiscard]] bool bind(task_header* t) {
        shard& s = shards_[t->id() & mask_];
        std::lock_guard lock(s.mutex);
        if (s.closed)
            return false;
        s.list.push(t);
        return true;
    }

    /// Unlinks `t` if it is linked (a task cancelled at spawn never was).
    void unbind(task_header* t) noexcept {
        shard& s = shards_[t->id() & mask_];
        std::lock_guard lock(s.mutex);
        if (owned_tasks::is_linked(t))
            s.list.remove(t);
    }

    /// Refuses further binds.
    void close() noexcept {
        for (std::uint32_t i = 0; i <= mask_; ++i) {
            std::lock_guard lock(shards_[i].mutex);
            shards_[i].closed = true;
        }
    }

    /// Unlinks and returns some task, or null when every shard is empty.
    [[nodiscard]] task_header* pop() noexcept {
        for (std::uint32_t i = 0; i <= mask_; ++i) {
            std::lock_guard lock(shards_[i].mutex);
            if (task_header* t = shards_[i].list.pop())
                return t;
        }
        return nullptr;
    }

    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 0;
        for (std::uint32_t i = 0; i <= mask_; ++i) {
            std::lock_guard lock(shards_[i].mutex);
            n += shards_[i].list.size();
        }
        return n;
    }

private:
    struct alignas(64) shard {
        mutable spin_lock mutex;
        owned_tasks list;
        bool closed = false;
    };

    static std::uint32_t round_up_pow2(std::uint32_t n) noexcept {
        std::uint32_t p = 1;
        while (p < n)
            p <<= 1;
        return p;
    }

    std::uint32_t mask_;
    std::unique_ptr<shard[]> shards_;
};

} // namespace eddy::detail
