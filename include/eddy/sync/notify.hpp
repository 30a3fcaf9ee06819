#pragma once
//! `eddy::notify`: wake one task or all waiting tasks, without data (Tokio's `Notify`).
//!
//! ```cpp
//! eddy::notify n;
//! // consumer                                 // producer
//! co_await n.notified();                      n.notify_one();
//! ```
//!
//! Semantics:
//! - `notify_one()` wakes the longest waiting `notified()` (FIFO). If nobody waits, it stores one
//!   permit: the next `notified()` completes at once and consumes it. Permits do not add up: two
//!   `notify_one()` with nobody waiting store one.
//! - `notify_waiters()` wakes every `notified()` registered now and stores nothing. A
//!   `notified()` counts as registered from its creation for this purpose: one created before
//!   the call completes even if it was first awaited after it.
//! - Waiting on a condition, the race-free way: a `notify_one()` that comes between checking the
//!   condition and awaiting must not be lost. Create the operation and `enable()` it *before*
//!   checking; from then on it is in the queue and `notify_one()` reaches it:
//!
//!       for (;;) {
//!           auto notified = n.notified();
//!           notified.enable();             // registered: notifications from here on count
//!           if (condition_holds())
//!               break;
//!           co_await notified;             // completes at once if notified since enable()
//!       }
//!
//!   (With only `notify_waiters()` on the other side, creating the operation before the check is
//!   enough; with `notify_one()`, a stored permit also covers the gap, but a waiter that is
//!   already queued would take it, which is why `enable()` is the answer.)
//!
//! Threads: every member may be called from any thread; a `notified_operation` is used by one
//! task. The task resumes on its runtime, woken by the notifying thread.
//!
//! Cancel-safe: a `notified_operation` destroyed while waiting leaves the queue. One destroyed
//! after `notify_one()` chose it (or after it consumed a stored permit), but before it resumed,
//! passes the notification on: to the next waiter, or back as the stored permit. So a cancelled
//! waiter never swallows a `notify_one()`. A `notify_waiters()` wake-up of a destroyed waiter is
//! simply dropped (it was meant for everybody waiting then, and nobody else misses it).

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <utility>

namespace eddy {

class notified_operation;

class notify {
public:
    notify() noexcept = default;
    notify(const notify&) = delete;
    notify& operator=(const notify&) = delete;
    /// Waiters live in suspended coroutines that still refer to this object.
    ~notify() { EDDY_ASSERT(waiters_.empty() && draining_.empty()); }

    /// Wakes the longest waiting `notified()`, or stores one permit if none waits. Lock-free when
    /// nobody waits.
    void notify_one() noexcept {
        std::size_t cur = state_.load(detail::memory_order_relaxed);
        while ((cur & state_mask) != st_waiting) {
            // ORDERING: release publishes the notifier's writes to the waiter that consumes the
            // permit with an acquire CAS (also when a permit is already stored: the RMW extends
            // the release sequence).
            if (state_.compare_exchange_weak(cur, (cur & ~state_mask) | st_notified,
                                             detail::memory_order_release,
                                             detail::memory_order_relaxed)) {
                return;
            }
        }
        waker w;
        {
            std::lock_guard guard(lock_);
            w = notify_one_locked();
        }
        w.wake();
    }

    /// Wakes every waiter registered now (and every `notified()` created before this call);
    /// stores no permit.
    void notify_waiters() noexcept {
        detail::wake_list wakes;
        lock_.lock();
        std::size_t cur = state_.load(detail::memory_order_relaxed);
        for (;;) {
            // Everyone waiting is notified now: WAITING becomes EMPTY; a stored permit stays.
            std::size_t next = cur + epoch_unit;
            if ((cur & state_mask) == st_waiting)
                next = next & ~state_mask;
            // ORDERING: release pairs with the acquire load of waiters that see the new epoch.
            if (state_.compare_exchange_weak(cur, next, detail::memory_order_release,
                                             detail::memory_order_relaxed)) {
                break;
            }
        }
        draining_.splice_back(waiters_);
        for (;;) {
            while (!wakes.full() && !draining_.empty()) {
                waiter* w = draining_.pop_front();
                w->status = waiter_status::notified_all;
                wakes.push(std::move(w->wake));
            }
            if (draining_.empty())
                break;
            lock_.unlock();
            wakes.wake_all();
            lock_.lock();
        }
        lock_.unlock();
    }

    /// An operation that completes on the next notification (see the header comment). Creating
    /// it registers it for `notify_waiters()`; `enable()` or awaiting it queues it for
    /// `notify_one()`.
    [[nodiscard]] notified_operation notified() noexcept;

private:
    friend class notified_operation;

    // state_: bits 0-1 the state below, bits 2.. the number of notify_waiters() calls (epoch).
    static constexpr std::size_t st_empty = 0;    ///< no waiter, no permit
    static constexpr std::size_t st_waiting = 1;  ///< waiters_ is not empty (only under lock_)
    static constexpr std::size_t st_notified = 2; ///< one permit stored, nobody waits
    static constexpr std::size_t state_mask = 3;
    static constexpr std::size_t epoch_unit = 4;

    enum class waiter_status : unsigned char { idle, waiting, notified_one, notified_all };

    struct waiter : detail::list_node<waiter> {
        waker wake;                                 ///< empty until awaited (enable() alone)
        waiter_status status = waiter_status::idle; ///< guarded by lock_ once queued
    };

    /// Under lock_: hands one notification to the first waiter (its waker is returned, to be
    /// woken after unlocking) or stores the permit.
    waker notify_one_locked() noexcept {
        std::size_t cur = state_.load(detail::memory_order_relaxed);
        while ((cur & state_mask) != st_waiting) {
            // ORDERING: release, as in notify_one.
            if (state_.compare_exchange_weak(cur, (cur & ~state_mask) | st_notified,
                                             detail::memory_order_release,
                                             detail::memory_order_relaxed)) {
                return {};
            }
        }
        waiter* w = waiters_.pop_front();
        EDDY_ASSERT(w != nullptr);
        w->status = waiter_status::notified_one;
        if (waiters_.empty()) {
            // SAFETY: while the state is WAITING nobody changes the word without holding lock_
            // (the lock-free paths only act on EMPTY or NOTIFIED), so a plain store loses nothing.
            state_.store((cur & ~state_mask) | st_empty, detail::memory_order_relaxed);
        }
        return std::move(w->wake);
    }

    detail::atomic<std::size_t> state_{0};
    detail::spin_lock lock_;
    detail::intrusive_list<waiter> waiters_;  ///< queued for notify_one, FIFO; epoch == current
    detail::intrusive_list<waiter> draining_; ///< taken by notify_waiters, not woken yet
};

/// `co_await n.notified()`: completes on a notification. See `notify`'s header comment for the
/// semantics, `enable()` and cancel safety. Movable only before it is enabled or awaited.
class [[nodiscard]] notified_operation {
public:
    notified_operation(notified_operation&& other) noexcept
        : notify_(other.notify_),
          epoch_(other.epoch_),
          phase_(other.phase_),
          holds_one_(std::exchange(other.holds_one_, false)) {
        EDDY_ASSERT(other.phase_ != phase::queued);
        other.phase_ = phase::done;
    }
    notified_operation& operator=(notified_operation&&) = delete;
    ~notified_operation() {
        if (phase_ == phase::queued) {
            withdraw();
        } else if (holds_one_) {
            // Consumed a permit but never resumed: give it back (or to the next waiter).
            notify_->notify_one();
        }
    }

    /// Queues this operation for `notify_one()` without suspending, so that a notification that
    /// arrives before the `co_await` is not lost. Returns true if it was already notified (the
    /// `co_await` will not suspend). May be called more than once.
    bool enable() noexcept {
        switch (phase_) {
        case phase::init:
            return register_locked_or_ready({});
        case phase::queued: {
            std::lock_guard guard(notify_->lock_);
            return node_.status != notify::waiter_status::waiting;
        }
        case phase::ready:
        case phase::done:
            break;
        }
        return true;
    }

    bool await_ready() noexcept {
        switch (phase_) {
        case phase::init:
            if (!detail::coop::has_remaining() || !try_ready())
                return false;
            (void)detail::coop::try_consume();
            return true;
        case phase::ready:
            return detail::coop::try_consume();
        case phase::queued:
            return false;
        case phase::done:
            break;
        }
        return true;
    }

    bool await_suspend(std::coroutine_handle<> h) {
        waker w = current_waker(h);
        if (phase_ == phase::init) {
            if (!register_locked_or_ready(std::move(w)))
                return true; // queued with our waker
        } else if (phase_ == phase::queued) {
            std::lock_guard guard(notify_->lock_);
            if (node_.status == notify::waiter_status::waiting) {
                node_.wake = std::move(w);
                return true;
            }
            // Notified after enable(), before this await.
            holds_one_ = node_.status == notify::waiter_status::notified_one;
            node_.status = notify::waiter_status::idle;
            phase_ = phase::ready;
        }
        // Ready: resume now if the budget allows, else yield first (a notification this holds
        // is passed on by the destructor should the task be cancelled during the yield).
        return detail::complete_or_yield(h);
    }

    void await_resume() noexcept {
        // A queued operation is resumed only by its notification: the notifier set the status
        // under the lock before waking us, and the wake orders that before this point.
        phase_ = phase::done;
        holds_one_ = false;
    }

private:
    friend class notify;

    enum class phase : unsigned char {
        init,   ///< created, not registered
        queued, ///< in one of notify's lists, or taken out by a notifier: ask under the lock
        ready,  ///< notified; `holds_one_` says whether by a notify_one permit
        done,   ///< resumed: the notification is consumed
    };

    explicit notified_operation(notify& n) noexcept
        : notify_(&n), epoch_(n.state_.load(detail::memory_order_acquire) & ~notify::state_mask) {}

    /// Lock-free: completes if notify_waiters() ran since creation or a permit is stored.
    bool try_ready() noexcept {
        std::size_t cur = notify_->state_.load(detail::memory_order_acquire);
        for (;;) {
            if ((cur & ~notify::state_mask) != epoch_) {
                phase_ = phase::ready;
                return true;
            }
            if ((cur & notify::state_mask) != notify::st_notified)
                return false;
            // ORDERING: acquire pairs with the release of the notify_one that stored the permit.
            if (notify_->state_.compare_exchange_weak(cur, cur & ~notify::state_mask,
                                                      detail::memory_order_acquire,
                                                      detail::memory_order_acquire)) {
                phase_ = phase::ready;
                holds_one_ = true;
                return true;
            }
        }
    }

    /// From `init`: completes (returns true) as `try_ready` does, or queues with `w` (false).
    bool register_locked_or_ready(waker w) noexcept {
        if (try_ready())
            return true;
        std::lock_guard guard(notify_->lock_);
        std::size_t cur = notify_->state_.load(detail::memory_order_acquire);
        for (;;) {
            if ((cur & ~notify::state_mask) != epoch_) {
                phase_ = phase::ready;
                return true;
            }
            const std::size_t st = cur & notify::state_mask;
            const std::size_t next = st == notify::st_notified ? (cur & ~notify::state_mask)
                                                               : (cur | notify::st_waiting);
            // ORDERING: acquire, as in try_ready (when this consumes a permit).
            if (notify_->state_.compare_exchange_weak(cur, next, detail::memory_order_acquire,
                                                      detail::memory_order_acquire)) {
                if (st == notify::st_notified) {
                    phase_ = phase::ready;
                    holds_one_ = true;
                    return true;
                }
                node_.wake = std::move(w);
                node_.status = notify::waiter_status::waiting;
                notify_->waiters_.push_back(&node_);
                phase_ = phase::queued;
                return false;
            }
        }
    }

    /// Destructor of a queued operation: leave the list, or pass on a notify_one it was given.
    void withdraw() noexcept {
        waker to_wake;
        waker dropped;
        {
            std::lock_guard guard(notify_->lock_);
            switch (node_.status) {
            case notify::waiter_status::waiting: {
                dropped = std::move(node_.wake);
                const std::size_t cur = notify_->state_.load(detail::memory_order_relaxed);
                if ((cur & ~notify::state_mask) != epoch_) {
                    // notify_waiters() moved it to draining_ and will not get to it now.
                    notify_->draining_.remove(&node_);
                } else {
                    notify_->waiters_.remove(&node_);
                    if (notify_->waiters_.empty()) {
                        // SAFETY: the state is WAITING (we were queued), see notify_one_locked.
                        notify_->state_.store((cur & ~notify::state_mask) | notify::st_empty,
                                              detail::memory_order_relaxed);
                    }
                }
                break;
            }
            case notify::waiter_status::notified_one:
                to_wake = notify_->notify_one_locked();
                break;
            case notify::waiter_status::notified_all:
            case notify::waiter_status::idle:
                break;
            }
            node_.status = notify::waiter_status::idle;
        }
        dropped.reset();
        to_wake.wake();
        phase_ = phase::done;
    }

    notify* notify_;
    std::size_t epoch_; ///< notify_waiters() count at creation, shifted as in notify::state_
    notify::waiter node_;
    phase phase_ = phase::init;
    bool holds_one_ = false; ///< consumed a notify_one that it has not yet reported by resuming
};

inline notified_operation notify::notified() noexcept {
    return notified_operation(*this);
}

} // namespace eddy
