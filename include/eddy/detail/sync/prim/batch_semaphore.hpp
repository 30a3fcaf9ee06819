#pragma once
//! `batch_semaphore`: the fair, closable counting semaphore under `semaphore`, `mutex` and
//! `rw_lock` (Tokio builds its three on one such semaphore as well).
//!
//! Design:
//! - One atomic word holds the free permits and two flags, so the uncontended paths (take
//!   permits, return permits while nobody waits) are one compare-and-swap each, without the lock.
//! - Waiters queue in FIFO order on an intrusive list guarded by a spin lock. Returned permits go
//!   to the head of the queue first, and a head that needs more than is free takes what there is
//!   and keeps waiting for the rest. So a large `acquire_many` at the head blocks later small
//!   ones, and nobody barges past a queued waiter.
//! - A waiter is granted its permits under the lock (direct hand-off) and woken after the lock is
//!   released. From then on it owns the permits, even before it resumes: if it is destroyed
//!   first (its task was cancelled), its destructor returns them, which hands them on to the
//!   next waiter. A waiter destroyed while still queued returns the part it was already given.
//!
//! State word (`state_`):
//!
//!     bit 0        closed: every acquire fails with `closed`; set once, never cleared
//!     bit 1        queued: the waiter list is not empty (set and cleared only under `lock_`)
//!     bits 2..63   free permits
//!
//! Invariant: while `queued` is set and the semaphore is open, the free count is 0: permits
//! returned while anyone waits are handed to the waiters and reach the word only once the queue
//! is empty. That is what keeps lock-free `try_acquire` from barging past the queue.
//!
//! Thread safety: every member may be called from any thread.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/blocking.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/task/thread_waker.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace eddy::detail::prim {

/// Outcome of an acquire attempt.
enum class acquire_status : unsigned char {
    acquired,   ///< the permits are the caller's
    no_permits, ///< not enough free permits (non-blocking attempts only)
    closed,     ///< the semaphore is closed
};

class batch_semaphore {
public:
    /// The most permits a semaphore can hold (and the most one acquire can ask for).
    static constexpr std::size_t max_permits = SIZE_MAX >> 3;

    /// Where a waiter is, guarded by the semaphore's lock once the waiter was queued.
    enum class waiter_state : unsigned char {
        idle,    ///< not queued, owns nothing
        queued,  ///< in the queue, possibly holding part of its permits
        granted, ///< owns all its permits; removed from the queue
        closed,  ///< removed from the queue by close(); owns nothing
    };

    /// A queued request. Lives in the awaiting coroutine's frame (or a blocked thread's stack).
    struct waiter : list_node<waiter> {
        std::size_t needed = 0;    ///< permits asked for
        std::size_t remaining = 0; ///< permits still missing while queued
        waker wake;                ///< woken once granted or closed
        waiter_state state = waiter_state::idle;
    };

    explicit batch_semaphore(std::size_t permits) : state_(checked(permits) << permit_shift) {}
    batch_semaphore(const batch_semaphore&) = delete;
    batch_semaphore& operator=(const batch_semaphore&) = delete;
    /// A waiter lives in a suspended coroutine that still refers to this semaphore: destroying
    /// the semaphore under it would leave that coroutine to touch freed memory later.
    ~batch_semaphore() { EDDY_ASSERT(waiters_.empty()); }

    /// Takes `n` permits if they are free and nobody is queued. Lock-free.
    acquire_status try_acquire(std::size_t n) noexcept {
        std::size_t cur = state_.load(memory_order_relaxed);
        for (;;) {
            if (cur & closed_bit)
                return acquire_status::closed;
            if ((cur >> permit_shift) < n)
                return acquire_status::no_permits;
            // ORDERING: acquire pairs with the release in `release`/`publish`: the previous
            // holder's writes (the data a mutex guards) are visible to the new holder.
            if (state_.compare_exchange_weak(cur, cur - (n << permit_shift), memory_order_acquire,
                                             memory_order_relaxed)) {
                return acquire_status::acquired;
            }
        }
    }

    /// Returns `n` permits: to the queued waiters first (in order), the rest to the free count.
    void release(std::size_t n) noexcept {
        if (n == 0)
            return;
        std::size_t cur = state_.load(memory_order_relaxed);
        while (!(cur & queued_bit)) {
            EDDY_ASSERT((cur >> permit_shift) + n <= max_permits);
            // ORDERING: release pairs with the acquire CAS of the next taker (try_acquire,
            // acquire_or_enqueue).
            if (state_.compare_exchange_weak(cur, cur + (n << permit_shift), memory_order_release,
                                             memory_order_relaxed)) {
                return;
            }
        }
        release_slow(n);
    }

    /// `release` for permits that did not exist before; throws `std::logic_error` if the total
    /// would exceed `max_permits`.
    void add_permits(std::size_t n) {
        if (n > max_permits - available()) {
            throw std::logic_error("eddy::semaphore::add_permits: more than max_permits permits");
        }
        release(n);
    }

    /// Removes up to `n` free permits for good; returns how many. Lock-free.
    std::size_t forget(std::size_t n) noexcept {
        std::size_t cur = state_.load(memory_order_relaxed);
        for (;;) {
            const std::size_t take = std::min(cur >> permit_shift, n);
            if (take == 0)
                return 0;
            // ORDERING: acquire, as in try_acquire (the caller takes the permits).
            if (state_.compare_exchange_weak(cur, cur - (take << permit_shift),
                                             memory_order_acquire, memory_order_relaxed)) {
                return take;
            }
        }
    }

    /// Closes the semaphore: queued waiters resume with `closed`, later acquires fail. Permits
    /// still held can be returned as usual (they count in `available()`).
    void close() noexcept {
        wake_list wakes;
        lock_.lock();
        // ORDERING: release/acquire so a caller that sees `closed` also sees what preceded it.
        state_.fetch_or(closed_bit, memory_order_acq_rel);
        for (;;) {
            std::size_t returned = 0;
            while (!wakes.full() && !waiters_.empty()) {
                waiter* w = waiters_.pop_front();
                returned += w->needed - w->remaining;
                w->state = waiter_state::closed;
                wakes.push(std::move(w->wake));
            }
            publish(returned);
            if (waiters_.empty())
                break;
            lock_.unlock();
            wakes.wake_all();
            lock_.lock();
        }
        lock_.unlock();
    }

    [[nodiscard]] bool is_closed() const noexcept {
        return (state_.load(memory_order_acquire) & closed_bit) != 0;
    }

    /// Free permits now (a snapshot). 0 while anyone is queued.
    [[nodiscard]] std::size_t available() const noexcept {
        return state_.load(memory_order_acquire) >> permit_shift;
    }

    enum class enqueue_result : unsigned char { acquired, closed, queued };

    /// Takes `w.needed` permits, or as many as are free and queues `w` (with `wk`) for the rest.
    enqueue_result acquire_or_enqueue(waiter& w, waker&& wk) noexcept {
        std::lock_guard guard(lock_);
        std::size_t cur = state_.load(memory_order_relaxed);
        for (;;) {
            if (cur & closed_bit)
                return enqueue_result::closed;
            // Under the lock `queued` is stable; when it is set the free count is 0, so this
            // waiter takes nothing and queues behind the others.
            const std::size_t take = std::min(cur >> permit_shift, w.needed);
            std::size_t next = cur - (take << permit_shift);
            if (take < w.needed)
                next |= queued_bit;
            // ORDERING: acquire, as in try_acquire.
            if (state_.compare_exchange_weak(cur, next, memory_order_acquire,
                                             memory_order_relaxed)) {
                if (take == w.needed)
                    return enqueue_result::acquired;
                w.remaining = w.needed - take;
                w.wake = std::move(wk);
                w.state = waiter_state::queued;
                waiters_.push_back(&w);
                return enqueue_result::queued;
            }
        }
    }

    /// Withdraws `w` (its owner is going away): a queued waiter leaves the queue and returns the
    /// permits it was given so far; a granted one returns all of its permits. Either way they go
    /// to the next waiters, so a cancelled waiter never strands permits or skips the queue.
    void cancel(waiter& w) noexcept {
        std::size_t give_back = 0;
        waker dropped;
        {
            std::lock_guard guard(lock_);
            switch (w.state) {
            case waiter_state::queued:
                waiters_.remove(&w);
                dropped = std::move(w.wake);
                give_back = w.needed - w.remaining;
                if (waiters_.empty()) {
                    publish(give_back);
                    give_back = 0;
                }
                break;
            case waiter_state::granted:
                give_back = w.needed;
                break;
            case waiter_state::idle:
            case waiter_state::closed:
                break;
            }
            w.state = waiter_state::idle;
        }
        // The waker is dropped outside the lock: dropping the last reference to a task frees it.
        dropped.reset();
        release(give_back);
    }

    /// Blocks the calling thread (which must not run a runtime's tasks) until `n` permits are
    /// the caller's or the semaphore is closed. `caller` names the public call in the error.
    acquire_status blocking_acquire(std::size_t n, const char* caller) {
        check_blocking_allowed(caller);
        const acquire_status fast = try_acquire(n);
        if (fast != acquire_status::no_permits)
            return fast;
        waiter node;
        node.needed = n;
        auto* tw = new thread_waker();
        const enqueue_result r = acquire_or_enqueue(node, make_waker(tw));
        waiter_state st = waiter_state::granted;
        if (r == enqueue_result::closed) {
            st = waiter_state::closed;
        } else if (r == enqueue_result::queued) {
            for (;;) {
                tw->park.park();
                {
                    std::lock_guard guard(lock_);
                    st = node.state;
                }
                if (st != waiter_state::queued)
                    break;
            }
        }
        tw->release();
        return st == waiter_state::granted ? acquire_status::acquired : acquire_status::closed;
    }

    /// The awaitable core of every acquire: yields `acquire_status::acquired` or `closed`.
    ///
    /// Cancel-safe: destroyed while queued, it leaves the queue and returns the permits it was
    /// given so far; destroyed after it was granted but before it resumed, it returns them all.
    /// Movable only before it is awaited (so it can be passed to `spawn`).
    class acquire_op {
    public:
        acquire_op(batch_semaphore& sem, std::size_t n) noexcept : sem_(&sem) { node_.needed = n; }
        acquire_op(acquire_op&& other) noexcept : sem_(other.sem_), status_(other.status_) {
            EDDY_ASSERT(!other.pending_);
            node_.needed = other.node_.needed;
        }
        acquire_op& operator=(acquire_op&&) = delete;
        ~acquire_op() {
            if (pending_)
                sem_->cancel(node_);
        }

        bool await_ready() noexcept {
            if (!coop::has_remaining())
                return false;
            status_ = sem_->try_acquire(node_.needed);
            if (status_ == acquire_status::no_permits)
                return false;
            (void)coop::try_consume();
            return true;
        }

        bool await_suspend(std::coroutine_handle<> h) {
            waker w = current_waker(h);
            switch (sem_->acquire_or_enqueue(node_, std::move(w))) {
            case enqueue_result::queued:
                pending_ = true;
                return true;
            case enqueue_result::acquired:
                status_ = acquire_status::acquired;
                if (coop::try_consume())
                    return false;
                // Ready, but the budget is spent: keep the permits and yield first. Should the
                // task be cancelled during the yield, the destructor returns them.
                node_.state = waiter_state::granted;
                pending_ = true;
                coop::yield_current(h);
                return true;
            case enqueue_result::closed:
                status_ = acquire_status::closed;
                return complete_or_yield(h);
            }
            return false;
        }

        acquire_status await_resume() noexcept {
            if (pending_) {
                // ORDERING: the granting thread wrote the state under the lock before waking us;
                // the wake (the task's state word) orders it before this read.
                pending_ = false;
                status_ = node_.state == waiter_state::granted ? acquire_status::acquired
                                                               : acquire_status::closed;
                node_.state = waiter_state::idle;
            }
            return status_;
        }

        [[nodiscard]] batch_semaphore& semaphore() const noexcept { return *sem_; }
        [[nodiscard]] std::size_t permits() const noexcept { return node_.needed; }

    private:
        batch_semaphore* sem_;
        waiter node_;
        acquire_status status_ = acquire_status::no_permits;
        bool pending_ = false; ///< queued or granted: the destructor must withdraw
    };

private:
    static constexpr std::size_t closed_bit = 1;
    static constexpr std::size_t queued_bit = 2;
    static constexpr unsigned permit_shift = 2;

    static std::size_t checked(std::size_t permits) {
        if (permits > max_permits)
            throw std::logic_error("eddy::semaphore: more than max_permits permits");
        return permits;
    }

    /// Under the lock: adds `n` free permits, and clears `queued` if the queue is empty.
    void publish(std::size_t n) noexcept {
        const std::size_t clear = waiters_.empty() ? queued_bit : 0;
        std::size_t cur = state_.load(memory_order_relaxed);
        // ORDERING: release, as in `release`.
        while (!state_.compare_exchange_weak(cur, (cur & ~clear) + (n << permit_shift),
                                             memory_order_release, memory_order_relaxed)) {
        }
    }

    void release_slow(std::size_t n) noexcept {
        wake_list wakes;
        lock_.lock();
        for (;;) {
            if (state_.load(memory_order_relaxed) & closed_bit) {
                // close() is emptying the queue (or has): the permits only go back to the count.
                publish(n);
                break;
            }
            while (n > 0 && !wakes.full() && !waiters_.empty()) {
                waiter* w = waiters_.front();
                const std::size_t take = std::min(n, w->remaining);
                w->remaining -= take;
                n -= take;
                if (w->remaining != 0)
                    break; // the head still waits for more; n is 0
                waiters_.remove(w);
                w->state = waiter_state::granted;
                wakes.push(std::move(w->wake));
            }
            if (waiters_.empty()) {
                publish(n);
                break;
            }
            if (n == 0)
                break;
            // The batch is full and permits are left for later waiters.
            lock_.unlock();
            wakes.wake_all();
            lock_.lock();
        }
        lock_.unlock();
        // `wakes` wakes the last batch as it goes out of scope.
    }

    atomic<std::size_t> state_;
    spin_lock lock_;
    intrusive_list<waiter> waiters_; // guarded by lock_
};

} // namespace eddy::detail::prim
