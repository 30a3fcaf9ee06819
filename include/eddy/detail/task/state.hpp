#pragma once
//! The state word of a spawned task: lifecycle flags and a reference count in one atomic.
//!
//! Bit layout of the 64-bit word (the same shape as Tokio's task state):
//!
//!     bit 0  RUNNING        a thread is polling (or cancelling) the task; at most one at a time
//!     bit 1  COMPLETE       the coroutine finished or was destroyed; output or CANCELLED is final
//!     bit 2  NOTIFIED       the task is, or is about to be, in exactly one run queue
//!     bit 3  JOIN_INTEREST  a join_handle still exists
//!     bit 4  JOIN_WAKER     the join side stored a waker in `task_header::join_waker`
//!     bit 5  CANCELLED      the task must be cancelled the next time it is polled
//!     bits 6..63            reference count (units of `ref_one`)
//!
//! Who may do what:
//! - Any thread may notify (wake), abort, take or drop references.
//! - Only the thread that set RUNNING touches the coroutine frame; it clears RUNNING (idle) or
//!   sets COMPLETE. A wake while RUNNING only sets NOTIFIED: the poller re-queues the task when it
//!   goes idle, so a task is never queued twice nor polled by two threads (wakeups are neither
//!   lost nor duplicated).
//! - `task_header::join_waker` is written by the join side only while JOIN_WAKER is clear, and
//!   read by the completing thread only after it saw JOIN_WAKER set together with COMPLETE.
//!
//! References are held by: the runtime's owned-task list (until completion), each queue entry
//! (one per NOTIFIED), the join_handle, and every waker. The memory is freed at zero.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <cstdint>

namespace eddy::detail {

class task_state {
public:
    static constexpr std::uint64_t running = 1U << 0;
    static constexpr std::uint64_t complete = 1U << 1;
    static constexpr std::uint64_t notified = 1U << 2;
    static constexpr std::uint64_t join_interest = 1U << 3;
    static constexpr std::uint64_t join_waker = 1U << 4;
    static constexpr std::uint64_t cancelled = 1U << 5;
    static constexpr std::uint64_t ref_one = 1U << 6;
    static constexpr std::uint64_t flag_mask = ref_one - 1;

    /// A freshly spawned task: queued once, joinable, references held by the owned-task list,
    /// the queue entry and the join handle.
    static constexpr std::uint64_t initial = notified | join_interest | 3 * ref_one;

    enum class run_action { poll, cancel, drop_ref };
    enum class idle_action { done, requeue };
    enum class wake_action { none, submit, dealloc };

    task_state() noexcept = default;
    explicit task_state(std::uint64_t init) noexcept : word_(init) {}

    void store_initial(std::uint64_t init) noexcept { word_.store(init, memory_order_relaxed); }

    [[nodiscard]] std::uint64_t load() const noexcept { return word_.load(memory_order_acquire); }

    static constexpr std::uint64_t ref_count(std::uint64_t s) noexcept { return s / ref_one; }

    /// Taken by a worker that popped the task from a queue: the queue entry's reference becomes
    /// the poll's reference. `drop_ref` means the task was completed (shut down) while queued; the
    /// caller must release the entry's reference.
    run_action transition_to_running() noexcept {
        std::uint64_t cur = word_.load(memory_order_relaxed);
        for (;;) {
            EDDY_ASSERT(cur & notified);
            if (cur & (running | complete))
                return run_action::drop_ref;
            const std::uint64_t next = (cur | running) & ~notified;
            // ORDERING: acquire pairs with the release in transition_to_idle / the waker that
            // queued us, so the previous poll's writes to the frame are visible here.
            if (word_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                            memory_order_relaxed)) {
                return (cur & cancelled) ? run_action::cancel : run_action::poll;
            }
        }
    }

    /// After a poll that left the task suspended. If it was notified meanwhile, the poll's
    /// reference is kept for the new queue entry (`requeue`); otherwise it is dropped. The
    /// owned-task list still holds a reference, so this never reaches zero.
    idle_action transition_to_idle() noexcept {
        std::uint64_t cur = word_.load(memory_order_relaxed);
        for (;;) {
            EDDY_ASSERT(cur & running);
            EDDY_ASSERT(!(cur & complete));
            std::uint64_t next = cur & ~running;
            const bool again = (cur & notified) != 0;
            if (!again) {
                EDDY_ASSERT(ref_count(cur) >= 2);
                next -= ref_one;
            }
            // ORDERING: release publishes this poll's frame writes to the next poller, which
            // acquires in transition_to_running.
            if (word_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                            memory_order_relaxed)) {
                return again ? idle_action::requeue : idle_action::done;
            }
        }
    }

    /// Called by the poller when the coroutine finished or was destroyed. Returns the previous
    /// word, from which the caller learns JOIN_INTEREST and JOIN_WAKER.
    std::uint64_t transition_to_complete() noexcept {
        // ORDERING: release publishes the output to the join side, which acquires COMPLETE in
        // join_handle; acquire pairs with set_join_waker's release so `join_waker` is visible.
        const std::uint64_t prev = word_.fetch_xor(running | complete, memory_order_acq_rel);
        EDDY_ASSERT(prev & running);
        EDDY_ASSERT(!(prev & complete));
        return prev;
    }

    /// A waker is consumed by waking. Its reference becomes the queue entry's, or is dropped.
    wake_action transition_to_notified_by_val() noexcept {
        std::uint64_t cur = word_.load(memory_order_relaxed);
        for (;;) {
            std::uint64_t next;
            wake_action action;
            if (cur & running) {
                // The poller re-queues it; the poll holds a reference, so this is not the last.
                next = (cur | notified) - ref_one;
                action = wake_action::none;
            } else if (cur & (complete | notified)) {
                next = cur - ref_one;
                action = ref_count(next) == 0 ? wake_action::dealloc : wake_action::none;
            } else {
                next = cur | notified;
                action = wake_action::submit;
            }
            // ORDERING: release makes the waker's writes (e.g. a channel slot) visible to the
            // poll that follows; acquire in case we free the task.
            if (word_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                            memory_order_relaxed)) {
                return action;
            }
        }
    }

    /// Wake through a borrowed waker: a new reference is taken for the queue entry if needed.
    wake_action transition_to_notified_by_ref() noexcept {
        std::uint64_t cur = word_.load(memory_order_relaxed);
        for (;;) {
            if ((cur & (complete | notified)) != 0)
                return wake_action::none;
            std::uint64_t next = cur | notified;
            const bool submit = (cur & running) == 0;
            if (submit)
                next += ref_one;
            // ORDERING: as in transition_to_notified_by_val.
            if (word_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                            memory_order_relaxed)) {
                return submit ? wake_action::submit : wake_action::none;
            }
        }
    }

    /// `join_handle::abort()`. Returns true when the caller must queue the task (it took a
    /// reference for the entry); the poll that follows sees CANCELLED and destroys the frame.
    bool transition_to_notified_and_cancel() noexcept {
        std::uint64_t cur = word_.load(memory_order_relaxed);
        for (;;) {
            if (cur & (complete | cancelled))
                return false;
            std::uint64_t next = cur | cancelled | notified;
            const bool submit = (cur & (running | notified)) == 0;
            if (submit)
                next += ref_one;
            if (word_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                            memory_order_relaxed)) {
                return submit;
            }
        }
    }

    /// Runtime shutdown. Marks the task cancelled; returns true when the task was idle, in which
    /// case the caller now holds RUNNING and must cancel it itself.
    bool transition_to_shutdown() noexcept {
        std::uint64_t cur = word_.load(memory_order_relaxed);
        for (;;) {
            const bool idle = (cur & (running | complete)) == 0;
            std::uint64_t next = cur | cancelled;
            if (idle)
                next |= running;
            if (word_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                            memory_order_relaxed)) {
                return idle;
            }
        }
    }

    /// Join side: publish a stored waker. False when the task already completed (then the caller
    /// still owns its waker and must not wait).
    bool set_join_waker() noexcept {
        std::uint64_t cur = word_.load(memory_order_acquire);
        for (;;) {
            EDDY_ASSERT(cur & join_interest);
            EDDY_ASSERT(!(cur & join_waker));
            if (cur & complete)
                return false;
            // ORDERING: release publishes `task_header::join_waker` to the completing thread
            // (acquire in transition_to_complete); acquire on failure sees the output.
            if (word_.compare_exchange_weak(cur, cur | join_waker, memory_order_acq_rel,
                                            memory_order_acquire)) {
                return true;
            }
        }
    }

    /// Join side withdraws its waker (the awaiting task was cancelled). False when the task
    /// completed first: the completing thread took the waker.
    bool unset_join_waker() noexcept {
        std::uint64_t cur = word_.load(memory_order_acquire);
        for (;;) {
            EDDY_ASSERT(cur & join_waker);
            if (cur & complete)
                return false;
            if (word_.compare_exchange_weak(cur, cur & ~join_waker, memory_order_acq_rel,
                                            memory_order_acquire)) {
                return true;
            }
        }
    }

    /// The join handle goes away. Returns the previous word: if JOIN_WAKER was set and COMPLETE
    /// was not, the caller owns the stored waker and drops it.
    std::uint64_t unset_join_interest() noexcept {
        // ORDERING: acq_rel so that a racing completion either sees JOIN_INTEREST (and leaves
        // the output to us) or does not (and reports it as unhandled), never both.
        return word_.fetch_and(~(join_interest | join_waker), memory_order_acq_rel);
    }

    void ref_inc() noexcept {
        // ORDERING: relaxed like any reference-count increment: the new reference is derived
        // from an existing one, which already orders access to the task.
        word_.fetch_add(ref_one, memory_order_relaxed);
    }

    /// Drops `n` references; true when they were the last ones.
    bool ref_dec(std::uint64_t n = 1) noexcept {
        // ORDERING: release so our uses happen-before the free; acquire for the thread that
        // frees, so it sees every other owner's last use.
        const std::uint64_t prev = word_.fetch_sub(n * ref_one, memory_order_acq_rel);
        EDDY_ASSERT(ref_count(prev) >= n);
        return ref_count(prev) == n;
    }

private:
    atomic<std::uint64_t> word_{0};
};

} // namespace eddy::detail
