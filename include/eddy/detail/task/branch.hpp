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
//! come from anywhere. Ready bits (one per branch, in 64-bit words) and a control word (WAITING,
//! CLOSED) are atomics: a wake is one fetch-or, plus a compare-and-swap when the parent waits.

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
#include <exception>
#include <new>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace eddy::detail {

class branch_set;

struct branch final : resumable {
    branch_set* set = nullptr;
    branch* next_done = nullptr; ///< the finished list (combinator side)
    std::uint32_t index = 0;
    std::uint32_t polls = 0; ///< times the branch was run (combinator side)
    bool fired = false;      ///< an event branch was woken (combinator side)
    /// The branch's outermost coroutine (null for an event branch): done() when it finished.
    std::coroutine_handle<> top{};

    [[nodiscard]] bool done() const noexcept { return top && top.done(); }
};

class branch_set {
public:
    /// A set of `n` branches with one reference (the caller's).
    static branch_set* create(std::size_t n) {
        const std::size_t words = (n + 63) / 64;
        void* mem = allocate_frame_memory(bytes_for(n));
        auto* set = ::new (mem) branch_set(n, words);
        for (std::size_t w = 0; w < words; ++w)
            ::new (&set->words()[w]) atomic<std::uint64_t>(0);
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
        words()[i / 64].fetch_or(bit(i), memory_order_relaxed);
    }

    /// A waker for event branch `i` (a timer, a join slot): it marks the branch fired.
    [[nodiscard]] waker event_waker(std::size_t i) noexcept {
        retain();
        return waker(&(*this)[i]);
    }

    /// Runs the ready branches (each at its resume point, inside the parent's poll), beginning
    /// with the first ready one at or after `first` (in circular order). Returns the index of a
    /// branch that finished (or an event branch that fired) in this call, or `none`. With
    /// `stop_at_first`, no branch runs after one finished: the rest stay ready (select: two
    /// branches must not both complete).
    std::size_t run_ready(std::size_t first = 0, bool stop_at_first = false) noexcept {
        std::size_t finished = none;
        self_woken_ = false;
        const std::size_t n_words = words_;
        const std::size_t first_word = first / 64;
        for (std::size_t k = 0; k <= n_words; ++k) {
            // The first word twice: its bits from `first` on, then (at the end) the ones before.
            std::size_t w = first_word + k; // (first_word + k) % n_words, without a division
            if (w >= n_words)
                w -= n_words;
            std::uint64_t mask = ~std::uint64_t{0};
            if (k == 0) {
                mask <<= first % 64;
            } else if (k == n_words) {
                mask = ~(mask << (first % 64));
                if (mask == 0)
                    break;
            }
            // ORDERING: acquire pairs with the wakes' fetch_or: what a waker published before
            // waking is visible to the branch we run.
            std::uint64_t ready = words()[w].fetch_and(~mask, memory_order_acquire) & mask;
            while (ready != 0) {
                const std::size_t i = w * 64 + static_cast<std::size_t>(std::countr_zero(ready));
                ready &= ready - 1;
                if (run_one(i) && finished == none) {
                    finished = i;
                    if (stop_at_first) {
                        if (ready != 0) // not run: still ready
                            words()[w].fetch_or(ready, memory_order_relaxed);
                        return finished;
                    }
                }
            }
        }
        return finished;
    }

    static constexpr std::size_t none = SIZE_MAX;

    /// The next branch that finished (or fired) since the last call, in the order they did;
    /// `none` when there is none.
    std::size_t pop_done() noexcept {
        branch* b = done_head_;
        if (b == nullptr)
            return none;
        done_head_ = b->next_done;
        if (done_head_ == nullptr)
            done_tail_ = nullptr;
        b->next_done = nullptr;
        return b->index;
    }

    /// An awaitable for the combinator: runs the ready branches and resumes as soon as one
    /// finished or fired (`finished()` says which); otherwise suspends the parent until a branch
    /// is woken. A branch that woke itself while running (a yield) makes the parent yield too, so
    /// `yield_now` inside a branch lets the runtime's other tasks run.
    class poll_operation {
    public:
        poll_operation(branch_set& s, std::size_t first, bool stop_at_first) noexcept
            : set_(s), first_(first), stop_at_first_(stop_at_first) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            for (;;) {
                finished_ = set_.run_ready(first_, stop_at_first_);
                if (finished_ != none)
                    return false;
                if (set_.self_woken_) {
                    // A branch yielded: yield too (it is ready, so there is nothing to wait for).
                    coop::yield_current(h);
                    return true;
                }
                switch (set_.suspend(h)) {
                case suspend_result::suspended:
                    return true;
                case suspend_result::ready:
                    break;
                }
                // Woken meanwhile: run again, within the cooperative budget.
                if (set_.self_woken_ || !coop::try_consume()) {
                    coop::yield_current(h);
                    return true;
                }
            }
        }
        /// The branch that finished or fired, or `none` after a yield.
        std::size_t await_resume() const noexcept { return finished_; }

    private:
        branch_set& set_;
        std::size_t first_;
        bool stop_at_first_;
        std::size_t finished_ = none;
    };

    [[nodiscard]] poll_operation poll(std::size_t first = 0, bool stop_at_first = false) noexcept {
        return poll_operation(*this, first, stop_at_first);
    }

    /// An awaitable that resumes once some branch is ready, without running any.
    class wait_operation {
    public:
        explicit wait_operation(branch_set& s) noexcept : set_(s) {}
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> h) {
            return set_.suspend(h) == suspend_result::suspended;
        }
        void await_resume() const noexcept {}

    private:
        branch_set& set_;
    };

    [[nodiscard]] wait_operation wait() noexcept { return wait_operation(*this); }

    /// Makes `b` visible (through `context().locals`) to the branches whenever they run.
    void bind_local(local_binding* b) noexcept { binding_ = b; }

    /// The combinator is done: later wakes are dropped. Releases the caller's reference.
    void close() noexcept {
        // ORDERING: acquire pairs with suspend's release of `parent_` when we take it back.
        const std::uint64_t prev = control_.fetch_or(closed_bit, memory_order_acq_rel);
        if (prev & waiting_bit) {
            // Closed while suspended (the parent is being cancelled): the waker is still ours.
            parent_.reset();
        }
        release();
    }

private:
    static constexpr std::uint64_t waiting_bit = 1;
    static constexpr std::uint64_t closed_bit = 2;
    static constexpr std::uint64_t bit(std::size_t i) noexcept {
        return std::uint64_t{1} << (i % 64);
    }

    enum class suspend_result { suspended, ready };

    branch_set(std::size_t n, std::size_t words) noexcept : size_(n), words_(words) {}
    ~branch_set() = default;

    static std::size_t words_offset() noexcept {
        return (sizeof(branch_set) + alignof(atomic<std::uint64_t>) - 1) /
               alignof(atomic<std::uint64_t>) * alignof(atomic<std::uint64_t>);
    }
    static std::size_t slots_offset(std::size_t n) noexcept {
        const std::size_t end = words_offset() + (n + 63) / 64 * sizeof(atomic<std::uint64_t>);
        return (end + alignof(branch) - 1) / alignof(branch) * alignof(branch);
    }
    static std::size_t bytes_for(std::size_t n) noexcept {
        return slots_offset(n) + n * sizeof(branch);
    }
    atomic<std::uint64_t>* words() noexcept {
        return std::launder(reinterpret_cast<atomic<std::uint64_t>*>(
            reinterpret_cast<std::byte*>(this) + words_offset()));
    }
    branch* slots() noexcept {
        return std::launder(
            reinterpret_cast<branch*>(reinterpret_cast<std::byte*>(this) + slots_offset(size_)));
    }

    /// Runs branch `i` once; true when it finished now or is an event that fired (then it joins
    /// the finished list).
    bool run_one(std::size_t i) noexcept {
        branch& b = (*this)[i];
        if (!b.top) {
            if (b.fired)
                return false; // fired before: a stale wake
            b.fired = true;
            push_done(b);
            return true;
        }
        if (b.top.done())
            return false; // finished earlier: a stale wake
        thread_context& ctx = context();
        ++b.polls;
        resumable* outer = std::exchange(ctx.task, &b);
        local_binding* outer_locals = ctx.locals;
        if (binding_ != nullptr) {
            binding_->outer = outer_locals;
            ctx.locals = binding_;
        }
        poll_resumable(b);
        ctx.locals = outer_locals;
        ctx.task = outer;
        if (b.top.done()) {
            push_done(b);
            return true;
        }
        if (words()[i / 64].load(memory_order_relaxed) & bit(i))
            self_woken_ = true; // it yielded (or was woken again at once)
        return false;
    }

    void push_done(branch& b) noexcept {
        if (done_tail_ != nullptr) {
            done_tail_->next_done = &b;
        } else {
            done_head_ = &b;
        }
        done_tail_ = &b;
    }

    [[nodiscard]] bool any_ready() noexcept {
        for (std::size_t w = 0; w < words_; ++w) {
            // ORDERING: seq_cst, see suspend().
            if (words()[w].load(memory_order_seq_cst) != 0)
                return true;
        }
        return false;
    }

    /// Arms the parent's waker and publishes WAITING, unless a branch is ready.
    suspend_result suspend(std::coroutine_handle<> h) {
        // `parent_` is ours until WAITING is published.
        parent_ = current_waker(h);
        // ORDERING: seq_cst on WAITING and on the ready words, on both sides (a wake sets its bit,
        // then reads WAITING): either the wake sees WAITING and wakes us, or we see its bit.
        // release publishes `parent_` to the wake that clears WAITING.
        control_.fetch_or(waiting_bit, memory_order_seq_cst);
        if (!any_ready())
            return suspend_result::suspended;
        std::uint64_t c = waiting_bit;
        if (!control_.compare_exchange_strong(c, 0, memory_order_acq_rel, memory_order_relaxed)) {
            // A wake cleared WAITING first and is waking the parent: let it.
            return suspend_result::suspended;
        }
        parent_.reset();
        return suspend_result::ready;
    }

    void release() noexcept {
        // ORDERING: acq_rel so the freeing thread sees every other owner's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1) {
            const std::size_t bytes = bytes_for(size_);
            branch* s = slots();
            for (std::size_t i = 0; i < size_; ++i)
                s[i].~branch();
            for (std::size_t w = 0; w < words_; ++w)
                words()[w].~atomic<std::uint64_t>();
            this->~branch_set();
            deallocate_frame_memory(static_cast<void*>(this), bytes);
        }
    }
    void retain() noexcept {
        // ORDERING: relaxed, derived from an existing reference.
        refs_.fetch_add(1, memory_order_relaxed);
    }

    static void wake(branch& b) noexcept {
        branch_set& s = *b.set;
        const std::size_t i = b.index;
        // ORDERING: seq_cst, see suspend(); it also releases what the waker did before waking.
        if (s.words()[i / 64].fetch_or(bit(i), memory_order_seq_cst) & bit(i))
            return; // already ready: whoever set it took care of the parent
        std::uint64_t c = s.control_.load(memory_order_seq_cst);
        while ((c & waiting_bit) && !(c & closed_bit)) {
            // ORDERING: acquire takes `parent_` from the poller.
            if (s.control_.compare_exchange_weak(c, c & ~waiting_bit, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
                // We cleared WAITING: the parent's waker is ours to wake (once per suspension).
                std::exchange(s.parent_, waker()).wake();
                return;
            }
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
        static constexpr wake_vtable table{&wake_by_val, &wake_by_ref, &clone, &drop, true};
        return &table;
    }

    /// WAITING (the parent is suspended in poll() and `parent_` is armed) and CLOSED. The ready
    /// bits (one per branch) are in the words that follow the object.
    atomic<std::uint64_t> control_{0};
    waker parent_;
    bool self_woken_ = false;          ///< poller only
    branch* done_head_ = nullptr;      ///< the finished list (poller only)
    local_binding* binding_ = nullptr; ///< a task_local scope's value, while branches run
    branch* done_tail_ = nullptr;
    atomic<std::size_t> refs_{1};
    const std::size_t size_;
    const std::size_t words_;
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
    /// Finished by throwing.
    [[nodiscard]] bool failed() const noexcept {
        return handle_.done() && handle_.promise().exception() != nullptr;
    }

    using value_type = T;

    /// The output (rethrows the branch's exception). Once, after done().
    T take() { return handle_.promise().take(); }

    /// The output, left in place (not after an exception). After done().
    template <class U = T>
    requires(!std::is_void_v<U>) const U& peek() const { return handle_.promise().peek(); }

    /// Rethrows the exception the branch finished with. After failed().
    [[noreturn]] void rethrow() const { std::rethrow_exception(handle_.promise().exception()); }

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

/// An awaiter a combinator can suspend in place, in the awaiting coroutine: its `await_suspend`
/// returns void or bool (it does not transfer control to a coroutine of its own).
template <class A>
concept in_place_awaiter = awaiter<A> && requires(A& a, std::coroutine_handle<> h) {
    requires std::is_void_v<decltype(a.await_suspend(h))> ||
        std::is_same_v<decltype(a.await_suspend(h)), bool>;
};

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

/// A task for an awaitable handed straight to a combinator (see `stored_awaitable_t`): a movable
/// temporary moves into the task, anything else is awaited where it is.
template <class A>
auto to_branch_task(A&& aw) {
    if constexpr (std::is_reference_v<stored_awaitable_t<A>>) {
        return forward_await<A&&>(std::forward<A>(aw));
    } else {
        return into_task(std::forward<A>(aw));
    }
}

/// What a branch of type T contributes to a combinator's result (`void` becomes monostate).
template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
value_or_monostate_t<T> take_value(branch_task<T>& b) {
    if constexpr (std::is_void_v<T>) {
        b.take();
        return {};
    } else {
        return b.take();
    }
}

/// Starts every branch task of a tuple, branch i = element i.
template <class... B>
void start_all(branch_set& set, std::tuple<B...>& bodies) noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (set.start(I, std::get<I>(bodies).handle()), ...);
    }
    (std::index_sequence_for<B...>{});
}

/// Starts every branch task of a vector, branch i = element i.
template <class T>
void start_all(branch_set& set, std::vector<branch_task<T>>& bodies) noexcept {
    for (std::size_t i = 0; i < bodies.size(); ++i)
        set.start(i, bodies[i].handle());
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
