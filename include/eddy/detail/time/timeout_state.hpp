#pragma once
//! The shared state of a `timeout` around an awaiter: two wake targets, one for the awaiter and
//! one for the deadline's timer, the timer itself, and the parent's waker. It is allocated only
//! when the awaiter suspends, so a timeout whose operation is ready at once stays small.
//!
//! A timeout around an awaiter (an object with `await_suspend` returning void or bool) needs no
//! coroutine of its own. The awaiter suspends inside the awaiting coroutine's `co_await` with the
//! thread context's `task` pointing at the operation target, so the waker it takes
//! (`current_waker`) marks OPERATION here instead of resuming the task. The timer's waker marks
//! TIMER. Whichever comes first resumes the parent, once (it clears WAITING); the parent then
//! reads both bits: the operation wins when it was woken, even if the deadline fired too (a wake
//! means the awaiter may be resumed), else the deadline does.
//!
//! Lifetime: reference counted like a branch set (the timeout holds one reference, each
//! outstanding waker another), because an awaiter may hand a clone of its waker to code that
//! outlives it. `close()` marks the state finished: later wakes are dropped, never forwarded.
//!
//! Threads: suspend and close run on the thread polling the parent; wakes come from anywhere.
//! Every flag lives in one atomic word, so a wake is one compare-and-swap.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/frame_pool.hpp>
#include <eddy/detail/task/wake_target.hpp>
#include <eddy/detail/time/source.hpp>
#include <eddy/detail/time/timer.hpp>

#include <coroutine>
#include <cstdint>
#include <new>
#include <utility>

namespace eddy::detail {

class timeout_state {
public:
    static constexpr std::uint32_t operation_bit = 1; ///< the awaiter was woken
    static constexpr std::uint32_t timer_bit = 2;     ///< the deadline fired

    /// A new state with one reference (the caller's).
    static timeout_state* create() {
        return ::new (allocate_frame_memory(sizeof(timeout_state))) timeout_state();
    }

    timeout_state(const timeout_state&) = delete;
    timeout_state& operator=(const timeout_state&) = delete;

    /// What the awaiter's `current_waker` must find in the thread context while it suspends.
    [[nodiscard]] resumable* operation() noexcept { return &operation_; }

    /// Registers the deadline's timer (in this state, so a timeout that never waits does not
    /// carry one). False when the deadline is already due. Throws `std::logic_error` on a thread
    /// that belongs to no runtime.
    bool arm(time_source::time_point deadline) {
        retain();
        waker w(&timer_target_); // adopts the reference; left with us if the timer is not armed
        return timer_.arm(deadline, w);
    }

    /// Whether the awaiter was woken (possibly by itself while suspending: a yield).
    [[nodiscard]] bool operation_woken() const noexcept {
        // ORDERING: acquire pairs with the wake's release: what the waker published before
        // waking is visible to the awaiter's resume.
        return (state_.load(memory_order_acquire) & operation_bit) != 0;
    }

    /// Arms the parent's waker for `h` and publishes WAITING. True when the parent must suspend
    /// (a wake resumes it); false when a wake came first and the parent goes on at once.
    bool suspend(std::coroutine_handle<> h) {
        parent_ = current_waker(h); // ours until WAITING is published
        // ORDERING: release publishes `parent_` to the wake that clears WAITING; acquire takes
        // what an earlier wake published.
        if ((state_.fetch_or(waiting_bit, memory_order_acq_rel) & (operation_bit | timer_bit)) == 0)
            return true;
        // A wake landed before WAITING, so it woke nobody. Take WAITING back, unless a later
        // wake took it (then that wake resumes the parent).
        if ((state_.fetch_and(~waiting_bit, memory_order_acq_rel) & waiting_bit) == 0)
            return true;
        parent_.reset();
        return false;
    }

    /// The timeout is done: withdraws the timer, and later wakes are dropped. Returns the
    /// OPERATION and TIMER bits as they were, and releases the caller's reference.
    std::uint32_t close() noexcept {
        // The timer's waker, withdrawn unwoken (empty when it fired): one more reference we hold.
        waker timer = timer_.withdraw();
        const std::uint32_t held = timer ? 2 : 1;
        // ORDERING: acquire pairs with every other owner's release of its reference: when the
        // caller's are the last ones, no waker is left to race with, and the wakes' effects are
        // visible.
        if (refs_.load(memory_order_acquire) == held) {
            (void)timer.release(); // its reference is counted in `held`
            const std::uint32_t prev = state_.load(memory_order_relaxed);
            if (prev & waiting_bit)
                parent_.reset(); // closed while suspended: the parent is being destroyed
            destroy();
            return prev & (operation_bit | timer_bit);
        }
        timer.reset();
        // ORDERING: acquire pairs with the wakes' release (the operation's result is visible).
        const std::uint32_t prev = state_.fetch_or(closed_bit, memory_order_acq_rel);
        if (prev & waiting_bit) {
            // Closed while suspended (the parent is being destroyed): the waker is still ours.
            parent_.reset();
        }
        release();
        return prev & (operation_bit | timer_bit);
    }

private:
    static constexpr std::uint32_t waiting_bit = 4;
    static constexpr std::uint32_t closed_bit = 8;

    struct target : resumable {
        timeout_state* state;
        std::uint32_t bit;
    };

    timeout_state() noexcept {
        operation_.vtable = vtable();
        operation_.state = this;
        operation_.bit = operation_bit;
        timer_target_.vtable = vtable();
        timer_target_.state = this;
        timer_target_.bit = timer_bit;
    }
    ~timeout_state() = default;

    void wake(std::uint32_t bit) noexcept {
        std::uint32_t c = state_.load(memory_order_relaxed);
        for (;;) {
            if (c & bit)
                return; // woken before: whoever did it took care of the parent
            const bool resume_parent = (c & waiting_bit) && !(c & closed_bit);
            const std::uint32_t next = resume_parent ? (c | bit) & ~waiting_bit : c | bit;
            // ORDERING: release publishes what the waker did before waking; acquire takes
            // `parent_` from suspend().
            if (state_.compare_exchange_weak(c, next, memory_order_acq_rel, memory_order_relaxed))
                break;
        }
        if ((c & waiting_bit) && !(c & closed_bit)) {
            // We cleared WAITING: the parent's waker is ours to wake (once per timeout).
            std::exchange(parent_, waker()).wake();
        }
    }

    void retain() noexcept {
        // ORDERING: relaxed, derived from an existing reference.
        refs_.fetch_add(1, memory_order_relaxed);
    }
    void release() noexcept {
        // ORDERING: acq_rel so the freeing thread sees every other owner's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1)
            destroy();
    }
    void destroy() noexcept {
        this->~timeout_state();
        deallocate_frame_memory(static_cast<void*>(this), sizeof(timeout_state));
    }

    static target& self(wake_target* w) noexcept { return *static_cast<target*>(w); }
    static void wake_by_val(wake_target* w) noexcept {
        target& t = self(w);
        t.state->wake(t.bit);
        t.state->release();
    }
    static void wake_by_ref(wake_target* w) noexcept { self(w).state->wake(self(w).bit); }
    static void clone(wake_target* w) noexcept { self(w).state->retain(); }
    static void drop(wake_target* w) noexcept { self(w).state->release(); }
    static const wake_vtable* vtable() noexcept {
        static constexpr wake_vtable table{&wake_by_val, &wake_by_ref, &clone, &drop};
        return &table;
    }

    atomic<std::uint32_t> state_{0}; ///< OPERATION, TIMER, WAITING, CLOSED
    atomic<std::uint32_t> refs_{1};
    waker parent_;
    target operation_;
    target timer_target_;
    timer timer_; ///< disarmed (withdrawn or fired) before the state is freed
};

} // namespace eddy::detail
