#pragma once
//! Branches: awaitables that a combinator (timeout, select, join) runs concurrently inside the
//! poll of the task that awaits it, without spawning.
//!
//! eddy resumes coroutines rather than re-polling them: a wake means "resume at the recorded
//! point". So each branch is a `resumable` of its own. While a branch runs, the thread context's
//! `task` points at it, and the wakers its awaitables take (`current_waker`) wake the branch, not
//! the task: a branch wake puts the branch on its set's ready list, and wakes the parent (the task,
//! or the branch of an enclosing combinator) only while the combinator is suspended waiting for
//! it, and only once per suspension. The combinator then runs exactly the branches that were
//! woken, each at its own resume point. A branch can also be an event source with no coroutine
//! (a timer): its wake just marks it fired.
//!
//! Lifetime: a `branch_set` is reference counted (the combinator holds one reference, every
//! outstanding waker of a branch another), so a wake racing the combinator's end touches live
//! memory. `close()` marks the set finished first: late wakes are dropped, never forwarded, so the
//! parent is never resumed by a branch that lost (the waker contract in eddy/waker.hpp).
//!
//! Threads: the combinator side (start, poll, close) runs on the thread polling the parent; wakes
//! come from anywhere. One atomic word holds a ready bit per branch plus WAITING and CLOSED, so a
//! wake is one compare-and-swap (at most 62 branches per set).

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/frame_pool.hpp>
#include <eddy/detail/task/wake_target.hpp>

#include <bit>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace eddy::detail {

class branch_set;

struct branch final : resumable {
    branch_set* set = nullptr;
    std::uint32_t index = 0;
    bool fired = false; ///< an event branch was woken (combinator side)
    /// The branch's outermost coroutine (null for an event branch): done() when it finished.
    std::coroutine_handle<> top{};

    [[nodiscard]] bool done() const noexcept { return top && top.done(); }
};

class branch_set {
public:
    /// Most branches one set can hold (one state bit each).
    static constexpr std::size_t max_branches = 62;

    /// A set of `n` branches with one reference (the caller's). Throws `std::length_error` for
    /// more than `max_branches`.
    static branch_set* create(std::size_t n) {
        if (n > max_branches)
            throw std::length_error("eddy: too many branches in one combinator");
        void* mem = allocate_frame_memory(bytes_for(n));
        auto* set = ::new (mem) branch_set(n);
        branch* slots = set->slots();
        for (std::size_t i = 0; i < n; ++i) {
            ::new (&slots[i]) branch();
            slots[i].vtable = vtable();
            slots[i].set = set;
            slots[i].index = static_cast<std::uint32_t>(i);
        }
        return set;
    }

    branch_set(const branch_set&) = delete;
    branch_set& operator=(const branch_set&) = delete;

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] branch& operator[](std::size_t i) noexcept { return slots()[i]; }

    /// Queues branch `i` to run `top` from its start at the next poll.
    void start(std::size_t i, std::coroutine_handle<> top) noexcept {
        branch& b = (*this)[i];
        b.top = top;
        b.resume_point = top;
        // ORDERING: relaxed: no waker of this branch exists yet.
        state_.fetch_or(bit(i), memory_order_relaxed);
    }

    /// A waker for event branch `i` (a timer, a join slot): it marks the branch fired.
    [[nodiscard]] waker event_waker(std::size_t i) noexcept {
        retain();
        return waker(&(*this)[i]);
    }

    /// Runs the ready branches (each at its resume point, inside the parent's poll). Returns true
    /// when a coroutine branch finished or an event branch fired in this call.
    bool run_ready() noexcept {
        // ORDERING: acquire pairs with the wakes' release: what a waker published before waking
        // is visible to the branch we run.
        std::uint64_t ready =
            state_.fetch_and(waiting_bit | closed_bit, memory_order_acquire) & ready_mask;
        bool progress = false;
        self_woken_ = false;
        thread_context& ctx = context();
        while (ready != 0) {
            const auto i = static_cast<std::size_t>(std::countr_zero(ready));
            ready &= ready - 1;
            branch& b = (*this)[i];
            if (!b.top) {
                b.fired = true;
                progress = true;
                continue;
            }
            if (b.top.done())
                continue; // finished earlier: a stale wake
            resumable* outer = std::exchange(ctx.task, &b);
            run_trampoline(b.resume_point);
            ctx.task = outer;
            if (b.top.done()) {
                progress = true;
            } else if (state_.load(memory_order_relaxed) & bit(i)) {
                self_woken_ = true; // it yielded (or was woken again at once)
            }
        }
        return progress;
    }

    /// An awaitable for the combinator: runs the ready branches and resumes as soon as one
    /// finished or fired; otherwise suspends the parent until a branch is woken. A branch that
    /// woke itself while running (a yield) makes the parent yield too, so `yield_now` inside a
    /// branch lets the runtime's other tasks run.
    class poll_operation {
    public:
        explicit poll_operation(branch_set& s) noexcept : set_(s) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            for (;;) {
                if (set_.run_ready())
                    return false;
                // `parent_` is ours until WAITING is published.
                set_.parent_ = current_waker(h);
                std::uint64_t s = set_.state_.load(memory_order_relaxed);
                while ((s & ready_mask) == 0) {
                    // ORDERING: release publishes `parent_` to the wake that clears WAITING.
                    if (set_.state_.compare_exchange_weak(s, s | waiting_bit, memory_order_release,
                                                          memory_order_relaxed)) {
                        return true;
                    }
                }
                set_.parent_.reset();
                // Woken meanwhile: run again, within the cooperative budget.
                if (set_.self_woken_ || !coop::try_consume()) {
                    coop::yield_current(h);
                    return true;
                }
            }
        }
        void await_resume() const noexcept {}

    private:
        branch_set& set_;
    };

    [[nodiscard]] poll_operation poll() noexcept { return poll_operation(*this); }

    /// The combinator is done: later wakes are dropped. Releases the caller's reference.
    void close() noexcept {
        // ORDERING: acquire pairs with poll's release of `parent_` when we take it back.
        const std::uint64_t prev = state_.fetch_or(closed_bit, memory_order_acq_rel);
        if (prev & waiting_bit) {
            // Closed while suspended (the parent is being cancelled): the waker is still ours.
            parent_.reset();
        }
        release();
    }

private:
    static constexpr std::uint64_t waiting_bit = std::uint64_t{1} << 62;
    static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
    static constexpr std::uint64_t ready_mask = waiting_bit - 1;
    static constexpr std::uint64_t bit(std::size_t i) noexcept { return std::uint64_t{1} << i; }

    explicit branch_set(std::size_t n) noexcept : size_(n) {}
    ~branch_set() = default;

    static std::size_t header_bytes() noexcept {
        return (sizeof(branch_set) + alignof(branch) - 1) / alignof(branch) * alignof(branch);
    }
    static std::size_t bytes_for(std::size_t n) noexcept {
        return header_bytes() + n * sizeof(branch);
    }
    branch* slots() noexcept {
        return std::launder(
            reinterpret_cast<branch*>(reinterpret_cast<std::byte*>(this) + header_bytes()));
    }

    void retain() noexcept {
        // ORDERING: relaxed, derived from an existing reference.
        refs_.fetch_add(1, memory_order_relaxed);
    }
    void release() noexcept {
        // ORDERING: acq_rel so the freeing thread sees every other owner's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1) {
            const std::size_t bytes = bytes_for(size_);
            branch* s = slots();
            for (std::size_t i = 0; i < size_; ++i)
                s[i].~branch();
            this->~branch_set();
            deallocate_frame_memory(static_cast<void*>(this), bytes);
        }
    }

    static void wake(branch& b) noexcept {
        branch_set& s = *b.set;
        std::uint64_t cur = s.state_.load(memory_order_relaxed);
        for (;;) {
            if (cur & closed_bit)
                return;
            const std::uint64_t next = (cur | bit(b.index)) & ~waiting_bit;
            if (next == cur)
                return; // already queued, and the parent is not waiting
            // ORDERING: release publishes what the waker did before waking to run_ready;
            // acquire takes `parent_` from the poller when we clear WAITING.
            if (s.state_.compare_exchange_weak(cur, next, memory_order_acq_rel,
                                               memory_order_relaxed)) {
                break;
            }
        }
        if (cur & waiting_bit) {
            // We cleared WAITING: the parent's waker is ours to wake (once per suspension).
            std::exchange(s.parent_, waker()).wake();
        }
    }

    static branch& self(wake_target* w) noexcept { return *static_cast<branch*>(w); }
    static void wake_by_val(wake_target* w) noexcept {
        branch& b = self(w);
        wake(b);
        b.set->release();
    }
    static void wake_by_ref(wake_target* w) noexcept { wake(self(w)); }
    static void clone(wake_target* w) noexcept { self(w).set->retain(); }
    static void drop(wake_target* w) noexcept { self(w).set->release(); }
    static const wake_vtable* vtable() noexcept {
        static constexpr wake_vtable table{&wake_by_val, &wake_by_ref, &clone, &drop};
        return &table;
    }

    /// Ready bits (one per branch), WAITING (the parent is suspended in poll() and `parent_` is
    /// armed) and CLOSED.
    atomic<std::uint64_t> state_{0};
    waker parent_;
    bool self_woken_ = false; ///< poller only
    atomic<std::size_t> refs_{1};
    const std::size_t size_;
};

/// A task run as a branch: owns its frame (destroyed with it, at whatever point it is suspended)
/// and hands out its output once finished.
template <class T>
class branch_task {
public:
    explicit branch_task(task<T> t) : handle_(t.release()) {
        if (!handle_)
            throw std::logic_error("eddy: a combinator was given an empty (moved-from) task");
    }
    branch_task(branch_task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    branch_task& operator=(branch_task&&) = delete;
    branch_task(const branch_task&) = delete;
    branch_task& operator=(const branch_task&) = delete;
    ~branch_task() { destroy(); }

    [[nodiscard]] std::coroutine_handle<> handle() const noexcept { return handle_; }
    [[nodiscard]] bool done() const noexcept { return handle_.done(); }

    /// The output (rethrows the branch's exception). Once, after done().
    T take() { return handle_.promise().take(); }

    /// Destroys the frame now (cancellation at its suspension point).
    void destroy() noexcept {
        if (handle_)
            std::exchange(handle_, nullptr).destroy();
    }

private:
    std::coroutine_handle<promise<T>> handle_;
};

/// How a combinator keeps an awaitable it is given: an lvalue by reference (its owner keeps it
/// alive), a movable rvalue by value, and a non-movable rvalue (an intrusive awaiter) by reference:
/// such a temporary lives until the end of the full expression, so the combinator must be awaited
/// in that same expression (`co_await eddy::timeout(1s, rx.recv())`).
template <class A>
using stored_awaitable_t =
    std::conditional_t<std::is_lvalue_reference_v<A> ||
                           !std::is_move_constructible_v<std::remove_cvref_t<A>>,
                       A&&, std::remove_cvref_t<A>>;

template <class S>
task<await_result_t<S&&>> forward_await(S&& aw) {
    if constexpr (awaiter<std::remove_cvref_t<S>>) {
        // An awaiter is used in place (GCC 12 would copy an xvalue operand of co_await).
        std::remove_reference_t<S>& in_place = aw;
        co_return co_await in_place;
    } else {
        co_return co_await std::forward<S>(aw);
    }
}

/// A task that awaits `stored` (a `stored_awaitable_t` member): moved into the task when held by
/// value, awaited in place when held by reference.
template <class S>
auto make_branch_task(S& stored) {
    if constexpr (std::is_reference_v<S>) {
        return forward_await<S>(static_cast<S&&>(stored));
    } else {
        return into_task(std::move(stored));
    }
}

/// Owns one reference to a branch set and closes it when destroyed.
class branch_set_ref {
public:
    explicit branch_set_ref(std::size_t n) : set_(branch_set::create(n)) {}
    branch_set_ref(const branch_set_ref&) = delete;
    branch_set_ref& operator=(const branch_set_ref&) = delete;
    ~branch_set_ref() { set_->close(); }
    branch_set* operator->() const noexcept { return set_; }
    branch_set& operator*() const noexcept { return *set_; }

private:
    branch_set* set_;
};

} // namespace eddy::detail
