#pragma once
//! A worker's fixed-capacity ring of runnable tasks (Tokio's design, rewritten).
//!
//! Producer (`local_queue::push_back`, `pop`): the owning worker only. Stealers (`steal_into`):
//! any other worker, one steal at a time per queue (a second concurrent stealer backs off).
//!
//! Indices are 32-bit and wrap; slots are `buffer_[index & mask]`. The queue owns the slots
//! [head.real, tail). `head_` packs two indices in one 64-bit word so they change together:
//!
//!     bits 32..63  steal   first slot a stealer may still be copying out of
//!     bits  0..31  real    next slot to pop or steal
//!
//! steal == real when no steal is in progress. A stealer first advances `real` past the half it
//! claims (so the owner can no longer pop those), copies the tasks, then sets steal = real. The
//! owner never writes a slot in [steal, real): it only writes slot `tail` when
//! tail - steal < capacity.
//!
//! Invariants: tail - steal <= capacity; steal <= real <= tail (mod 2^32).
//! When full, `push_back` moves half of the queue plus the new task to the inject queue in one
//! batch (one lock for capacity/2 + 1 tasks), like Tokio.

#include <eddy/config.hpp>

#include <eddy/detail/scheduler/inject_queue.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/raw_task.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace eddy::detail {

template <std::uint32_t Capacity = 256>
class local_queue {
    static_assert(Capacity >= 4 && (Capacity & (Capacity - 1)) == 0,
                  "local_queue capacity must be a power of two >= 4");

public:
    static constexpr std::uint32_t capacity = Capacity;

    local_queue() noexcept {
        for (auto& slot : buffer_)
            slot.store(nullptr, memory_order_relaxed);
    }
    local_queue(const local_queue&) = delete;
    local_queue& operator=(const local_queue&) = delete;

    /// Number of tasks queued (exact for the owner, an estimate for other threads).
    [[nodiscard]] std::uint32_t len() const noexcept {
        const auto [steal, real] = unpack(head_.load(memory_order_acquire));
        (void)steal;
        return tail_.load(memory_order_acquire) - real;
    }

    [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

    /// Any thread: whether a stealer would find something.
    [[nodiscard]] bool is_stealable() const noexcept {
        const auto [steal, real] = unpack(head_.load(memory_order_acquire));
        (void)steal;
        return tail_.load(memory_order_acquire) != real;
    }

    /// Owner only. Appends `t`; when full, moves half the queue and `t` to `inject`. Returns the
    /// number of tasks moved to the inject queue (0 in the common case).
    std::uint32_t push_back(task_header* t, inject_queue& inject) {
        for (;;) {
            // ORDERING: acquire pairs with the release CAS of a stealer finishing, so its reads of
            // the slots we are about to overwrite are done.
            const std::uint64_t head = head_.load(memory_order_acquire);
            const auto [steal, real] = unpack(head);
            // ORDERING: only this thread writes tail_.
            const std::uint32_t tail = tail_.load(memory_order_relaxed);
            if (tail - steal < capacity) {
                buffer_[tail & mask].store(t, memory_order_relaxed);
                // ORDERING: release publishes the slot to stealers, which acquire tail_.
                tail_.store(tail + 1, memory_order_release);
                return 0;
            }
            if (steal != real) {
                // A stealer is working on this queue and will free room soon; do not wait for it.
                if (!inject.push_batch(&t, 1))
                    drop_refused(&t, 1);
                return 1;
            }
            if (push_overflow(t, real, tail, inject))
                return capacity / 2 + 1;
            // A stealer took tasks meanwhile: there is room now, retry.
        }
    }

    /// Owner only. Takes the oldest task, or null.
    [[nodiscard]] task_header* pop() noexcept {
        std::uint64_t head = head_.load(memory_order_acquire);
        std::uint32_t index = 0;
        for (;;) {
            const auto [steal, real] = unpack(head);
            // ORDERING: only this thread writes tail_.
            if (real == tail_.load(memory_order_relaxed))
                return nullptr;
            const std::uint32_t next_real = real + 1;
            // While no steal is in progress both halves move together.
            const std::uint64_t next =
                steal == real ? pack(next_real, next_real) : pack(steal, next_real);
            // ORDERING: acq_rel orders our claim against stealers' claims on the same word.
            if (head_.compare_exchange_weak(head, next, memory_order_acq_rel,
                                            memory_order_acquire)) {
                index = real;
                break;
            }
        }
        return buffer_[index & mask].load(memory_order_relaxed);
    }

    /// A thief steals about half of this queue into `dst` (the thief's own, which must be at most
    /// half full). Returns one stolen task to run now (the rest are in `dst`), or null.
    [[nodiscard]] task_header* steal_into(local_queue& dst) noexcept {
        // ORDERING: dst is the caller's own queue: its tail is ours to read relaxed.
        const std::uint32_t dst_tail = dst.tail_.load(memory_order_relaxed);
        const auto [dst_steal, dst_real] = unpack(dst.head_.load(memory_order_acquire));
        (void)dst_real;
        if (dst_tail - dst_steal > capacity / 2)
            return nullptr; // no room for half a queue

        std::uint32_t n = steal_into2(dst, dst_tail);
        if (n == 0)
            return nullptr;
        // Keep the last one to run now; publish the others.
        --n;
        task_header* ret = dst.buffer_[(dst_tail + n) & mask].load(memory_order_relaxed);
        if (n != 0) {
            // ORDERING: release publishes the copied slots to stealers of dst.
            dst.tail_.store(dst_tail + n, memory_order_release);
        }
        return ret;
    }

private:
    static constexpr std::uint32_t mask = capacity - 1;

    struct indices {
        std::uint32_t steal;
        std::uint32_t real;
    };

    static constexpr indices unpack(std::uint64_t v) noexcept {
        return {static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>(v)};
    }
    static constexpr std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
        return (std::uint64_t{steal} << 32) | real;
    }

    /// Claims half of this (full) queue and sends it, with `t`, to the inject queue.
    bool push_overflow(task_header* t, std::uint32_t real, std::uint32_t tail,
                       inject_queue& inject) {
        constexpr std::uint32_t half = capacity / 2;
        EDDY_ASSERT(tail - real == capacity);
        const std::uint64_t prev = pack(real, real);
        std::uint64_t expected = prev;
        // ORDERING: the claim competes with stealers; acq_rel like pop.
        if (!head_.compare_exchange_strong(expected, pack(real + half, real + half),
                                           memory_order_acq_rel, memory_order_acquire)) {
            return false;
        }
        std::array<task_header*, half + 1> batch;
        for (std::uint32_t i = 0; i < half; ++i) {
            batch[i] = buffer_[(real + i) & mask].load(memory_order_relaxed);
        }
        batch[half] = t;
        if (!inject.push_batch(batch.data(), batch.size()))
            drop_refused(batch.data(), batch.size());
        return true;
    }

    /// Copies up to half of this queue's tasks into `dst` starting at `dst_tail`. Returns the
    /// number copied (0 if empty or another steal is in progress).
    std::uint32_t steal_into2(local_queue& dst, std::uint32_t dst_tail) noexcept {
        std::uint64_t prev = head_.load(memory_order_acquire);
        std::uint64_t next = 0;
        std::uint32_t n = 0;
        for (;;) {
            const auto [steal, real] = unpack(prev);
            if (steal != real)
                return 0; // another thief is copying
            // ORDERING: acquire pairs with the owner's release store of tail_: the slots up to
            // tail are written.
            const std::uint32_t tail = tail_.load(memory_order_acquire);
            n = tail - real;
            n -= n / 2;
            if (n == 0)
                return 0;
            next = pack(steal, real + n);
            if (head_.compare_exchange_weak(prev, next, memory_order_acq_rel,
                                            memory_order_acquire)) {
                break;
            }
        }
        const auto [first, claimed_end] = unpack(next);
        (void)claimed_end;
        for (std::uint32_t i = 0; i < n; ++i) {
            // SAFETY: slots [first, first + n) were claimed above; the owner does not overwrite
            // them until `steal` moves past them below.
            task_header* t = buffer_[(first + i) & mask].load(memory_order_relaxed);
            dst.buffer_[(dst_tail + i) & mask].store(t, memory_order_relaxed);
        }
        // Finish: steal catches up with real (which the owner may have advanced by popping).
        prev = next;
        for (;;) {
            const auto [steal, real] = unpack(prev);
            (void)steal;
            // ORDERING: release tells the owner our reads of the slots are complete.
            if (head_.compare_exchange_weak(prev, pack(real, real), memory_order_acq_rel,
                                            memory_order_acquire)) {
                return n;
            }
        }
    }

    /// The inject queue is closed (shutdown): the tasks are bound to the owned-task list, which
    /// shutdown cancels, so only the queue entries' references are dropped here.
    static void drop_refused(task_header* const* tasks, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i)
            release_task(tasks[i]);
    }

    alignas(64) atomic<std::uint64_t> head_{0};
    alignas(64) atomic<std::uint32_t> tail_{0};
    alignas(64) std::array<atomic<task_header*>, Capacity> buffer_;
};

} // namespace eddy::detail
