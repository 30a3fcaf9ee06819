#pragma once
//! `eddy::watch`: a single-producer, multi-consumer channel that keeps only the latest value
//! (Tokio's `sync::watch`, 1.24 semantics).
//!
//! ```cpp
//! auto [tx, rx] = eddy::watch::channel<config>(load());
//! tx.send(reload());                                   // errc::closed if no receiver is left
//! while (co_await rx.changed()) apply(*rx.borrow_and_update());
//! ```
//!
//! - The channel holds one value and a version. `send`/`send_modify`/`send_replace` store a new
//!   value and bump the version; every receiver remembers the version it last saw. Receivers
//!   see only the latest value: many sends between two `changed()` coalesce into one change.
//! - `co_await rx.changed()` completes when the version differs from the one the receiver saw
//!   (and marks it seen), or with `errc::closed` once the sender is gone and nothing new is left.
//! - `borrow()` returns a `ref<T>` that holds a shared lock on the value: readers share it, a
//!   send waits for all of them. Do not hold a `ref` across `co_await` (a sender on the same
//!   thread would deadlock, and one elsewhere would block its worker) and keep it short.
//! - `send(v)` fails (value handed back) when no receiver exists; `send_modify`, `send_if_modified`
//!   and `send_replace` always store. New receivers come from `sender::subscribe()` (they see
//!   the current value as seen) or from copying a receiver (same seen version).
//! - Thread safety: the sender and each receiver may be used from different threads at once;
//!   each handle by one task or thread at a time. Awaitables refer to their handle, which must
//!   outlive them. All awaitables here are cancel-safe: destroying them loses nothing (a change
//!   not yet observed stays unobserved for the next `changed()`).

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/channel/handle.hpp>
#include <eddy/detail/sync/channel/send_result.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace eddy::watch {

/// Outcome of `sender::send`: success, or `errc::closed` with the value handed back.
template <class T>
using send_result = detail::channel::send_result<T>;

template <class T>
class sender;
template <class T>
class receiver;

namespace detail {

struct waiter : eddy::detail::list_node<waiter> {
    waker w;
    std::uint64_t seen = 0; ///< receivers: the version the waiting receiver has seen
};

/// The shared state.
///
/// `state` packs the version and the closed flag: bit 0 CLOSED (the sender is gone), bits 1..63
/// the version, bumped by every store. The version is bumped while `value_lock` is held
/// exclusively, so a reader holding it shared sees a value and a version that belong together.
/// `lock` guards the two waiter lists only.
template <class T>
class shared {
public:
    static constexpr std::uint64_t closed_bit = 1;
    static constexpr std::uint64_t version_one = 2;

    explicit shared(T init) : value(std::move(init)) {}

    void retain() noexcept { refs_.fetch_add(1, eddy::detail::memory_order_relaxed); }
    void release() noexcept {
        // ORDERING: acq_rel so the deleting side sees every other owner's last use.
        if (refs_.fetch_sub(1, eddy::detail::memory_order_acq_rel) == 1)
            delete this;
    }

    [[nodiscard]] static std::uint64_t version_of(std::uint64_t st) noexcept {
        return st & ~closed_bit;
    }

    /// Wakes the tasks in `changed()` for which the version moved past the one they saw, or all
    /// once closed. Call after bumping the version or closing. A waiter whose receiver already
    /// saw the current version (through `borrow_and_update` after a bump whose notification is
    /// only arriving now) stays registered: waking it would resume it with nothing new.
    void notify_receivers() noexcept {
        eddy::detail::wake_list wakes;
        std::lock_guard g(lock);
        // ORDERING: acquire pairs with the release of bump / the close in sender::drop.
        const std::uint64_t st = state.load(eddy::detail::memory_order_acquire);
        waiter* w = rx_waiters.front();
        while (w != nullptr) {
            waiter* next = eddy::detail::intrusive_list<waiter>::next(w);
            if (version_of(st) != w->seen || (st & closed_bit) != 0) {
                rx_waiters.remove(w);
                wakes.push(std::move(w->w));
            }
            w = next;
        }
    }

    std::shared_mutex value_lock;
    T value;
    eddy::detail::atomic<std::uint64_t> state{0};
    eddy::detail::atomic<std::size_t> receivers{1};
    eddy::detail::spin_lock lock;
    eddy::detail::intrusive_list<waiter> rx_waiters; ///< tasks in receiver::changed()
    eddy::detail::intrusive_list<waiter> tx_waiters; ///< tasks in sender::closed()

private:
    ~shared() = default;
    eddy::detail::atomic<std::uint32_t> refs_{2};
};

template <class S>
S* checked(S* s, const char* what) {
    if (s == nullptr)
        throw std::logic_error(std::string("eddy::watch: ") + what +
                               " on an empty (moved-from) handle");
    return s;
}

/// A receiver's share: one of the receivers that keep the channel open for the sender.
template <class T>
struct receiver_ops {
    static void copy(shared<T>* s) noexcept {
        s->receivers.fetch_add(1, eddy::detail::memory_order_relaxed);
        s->retain();
    }
    static void drop(shared<T>* s) noexcept {
        // ORDERING: acq_rel: the sender that sees 0 sees this receiver's last use.
        if (s->receivers.fetch_sub(1, eddy::detail::memory_order_acq_rel) == 1) {
            eddy::detail::wake_list wakes;
            std::lock_guard g(s->lock);
            while (waiter* w = s->tx_waiters.pop_front())
                wakes.push(std::move(w->w));
        }
        s->release();
    }
};

/// The sender's share. Dropping it closes the channel.
template <class T>
struct sender_ops {
    static void drop(shared<T>* s) noexcept {
        // ORDERING: release pairs with the receivers' acquire loads.
        s->state.fetch_or(shared<T>::closed_bit, eddy::detail::memory_order_release);
        s->notify_receivers();
        s->release();
    }
};

} // namespace detail

/// A read guard on the channel's value: holds a shared lock until destroyed. Never hold one
/// across `co_await`.
template <class T>
class ref {
public:
    ref(std::shared_lock<std::shared_mutex> lock, const T& v, bool changed) noexcept
        : lock_(std::move(lock)), v_(&v), changed_(changed) {}

    const T& operator*() const noexcept { return *v_; }
    const T* operator->() const noexcept { return v_; }
    [[nodiscard]] const T& get() const noexcept { return *v_; }

    /// Whether this value was new to the receiver that borrowed it (always false from a sender).
    [[nodiscard]] bool has_changed() const noexcept { return changed_; }

private:
    std::shared_lock<std::shared_mutex> lock_;
    const T* v_;
    bool changed_;
};

/// The receiving half. Copyable: a copy has seen what the original has seen.
template <class T>
class receiver {
    using shared = detail::shared<T>;

public:
    receiver() noexcept = default;

    /// The current value, without marking it seen. See `ref`.
    [[nodiscard]] ref<T> borrow() const {
        shared* s = detail::checked(h_.get(), "borrow");
        std::shared_lock lk(s->value_lock);
        const std::uint64_t v =
            shared::version_of(s->state.load(eddy::detail::memory_order_acquire));
        return ref<T>(std::move(lk), s->value, v != seen_);
    }

    /// The current value, marking it seen (a following `changed()` waits for a newer one).
    [[nodiscard]] ref<T> borrow_and_update() {
        shared* s = detail::checked(h_.get(), "borrow_and_update");
        std::shared_lock lk(s->value_lock);
        const std::uint64_t v =
            shared::version_of(s->state.load(eddy::detail::memory_order_acquire));
        const bool changed = v != seen_;
        seen_ = v;
        return ref<T>(std::move(lk), s->value, changed);
    }

    /// Whether a value newer than the one last seen was stored; `errc::closed` once the sender
    /// is gone (Tokio 1.24).
    [[nodiscard]] result<bool> has_changed() const {
        shared* s = detail::checked(h_.get(), "has_changed");
        const std::uint64_t st = s->state.load(eddy::detail::memory_order_acquire);
        if (st & shared::closed_bit)
            return errc::closed;
        return shared::version_of(st) != seen_;
    }

    /// Marks the current value as not seen, so the next `changed()` completes at once.
    void mark_changed() noexcept {
        seen_ = 1; // odd: never equal to a version (versions are even)
    }

    /// `co_await rx.changed()`: waits for a value newer than the last one seen, marks it seen
    /// and returns success; `errc::closed` once the sender is gone and nothing newer is left.
    /// Resumes on a worker of this task's runtime, woken by the sending thread. Cancel-safe.
    class [[nodiscard]] changed_operation {
    public:
        explicit changed_operation(receiver* rx) noexcept : rx_(rx) {}
        changed_operation(changed_operation&& other) noexcept : rx_(other.rx_) {
            EDDY_ASSERT(!other.registered_);
        }
        changed_operation& operator=(changed_operation&&) = delete;
        ~changed_operation() {
            if (registered_) {
                shared* s = rx_->h_.get();
                eddy::detail::withdraw(s->lock, s->rx_waiters, node_);
            }
        }

        bool await_ready() const noexcept {
            return rx_->ready(rx_->h_.get()->state.load(eddy::detail::memory_order_acquire)) &&
                   eddy::detail::coop::try_consume();
        }

        bool await_suspend(std::coroutine_handle<> h) {
            shared* s = rx_->h_.get();
            {
                std::lock_guard g(s->lock);
                if (!rx_->ready(s->state.load(eddy::detail::memory_order_acquire))) {
                    node_.seen = rx_->seen_;
                    node_.w = current_waker(h);
                    s->rx_waiters.push_back(&node_);
                    registered_ = true;
                    return true;
                }
            }
            return eddy::detail::complete_or_yield(h);
        }

        result<void> await_resume() noexcept {
            registered_ = false;
            const std::uint64_t st = rx_->h_.get()->state.load(eddy::detail::memory_order_acquire);
            const std::uint64_t v = shared::version_of(st);
            if (v != rx_->seen_) {
                rx_->seen_ = v;
                return {};
            }
            EDDY_ASSERT(st & shared::closed_bit);
            return errc::closed;
        }

    private:
        receiver* rx_;
        detail::waiter node_;
        bool registered_ = false;
    };

    /// See `changed_operation`.
    changed_operation changed() {
        detail::checked(h_.get(), "changed");
        return changed_operation(this);
    }

    [[nodiscard]] bool same_channel(const receiver& other) const noexcept { return h_ == other.h_; }
    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    friend class sender<T>;
    template <class U>
    friend std::pair<sender<U>, receiver<U>> channel(U);

    receiver(shared* s, std::uint64_t seen) noexcept : h_(s), seen_(seen) {}

    [[nodiscard]] bool ready(std::uint64_t st) const noexcept {
        return shared::version_of(st) != seen_ || (st & shared::closed_bit) != 0;
    }

    eddy::detail::channel::handle<shared, detail::receiver_ops<T>> h_;
    std::uint64_t seen_ = 0;
};

/// The sending half. Move-only (one producer).
template <class T>
class sender {
    using shared = detail::shared<T>;

public:
    sender() noexcept = default;

    /// Stores `v` and wakes every receiver waiting in `changed()`; fails with `errc::closed`,
    /// handing `v` back, when there are no receivers (the value is then not stored). Waits for
    /// outstanding `ref`s to be released.
    send_result<T> send(T v) {
        shared* s = detail::checked(h_.get(), "send");
        if (s->receivers.load(eddy::detail::memory_order_acquire) == 0)
            return {errc::closed, std::move(v)};
        T old = send_replace(std::move(v));
        (void)old; // destroyed here, outside the value lock
        return {};
    }

    /// Stores `v` even with no receivers, wakes the waiting receivers, and returns the previous
    /// value.
    T send_replace(T v) {
        shared* s = detail::checked(h_.get(), "send_replace");
        {
            std::unique_lock lk(s->value_lock);
            std::swap(s->value, v);
            bump(s);
        }
        s->notify_receivers();
        return v;
    }

    /// Calls `f(value&)` under the exclusive lock, then bumps the version and wakes the waiting
    /// receivers (even with no receivers). If `f` throws, the version is not bumped. `f` must not
    /// borrow from this channel (it would deadlock on the lock it runs under).
    template <class F>
    void send_modify(F&& f) {
        shared* s = detail::checked(h_.get(), "send_modify");
        {
            std::unique_lock lk(s->value_lock);
            std::forward<F>(f)(s->value);
            bump(s);
        }
        s->notify_receivers();
    }

    /// Like `send_modify`, but `f` returns whether it modified the value; only then are the
    /// receivers told. Returns what `f` returned.
    template <class F>
    bool send_if_modified(F&& f) {
        shared* s = detail::checked(h_.get(), "send_if_modified");
        {
            std::unique_lock lk(s->value_lock);
            if (!std::forward<F>(f)(s->value))
                return false;
            bump(s);
        }
        s->notify_receivers();
        return true;
    }

    /// The current value. See `ref`.
    [[nodiscard]] ref<T> borrow() const {
        shared* s = detail::checked(h_.get(), "borrow");
        return ref<T>(std::shared_lock(s->value_lock), s->value, false);
    }

    /// A new receiver that has seen the current value.
    [[nodiscard]] receiver<T> subscribe() const {
        shared* s = detail::checked(h_.get(), "subscribe");
        std::shared_lock lk(s->value_lock);
        s->receivers.fetch_add(1, eddy::detail::memory_order_relaxed);
        s->retain();
        return receiver<T>(s,
                           shared::version_of(s->state.load(eddy::detail::memory_order_acquire)));
    }

    [[nodiscard]] std::size_t receiver_count() const {
        return detail::checked(h_.get(), "receiver_count")
            ->receivers.load(eddy::detail::memory_order_acquire);
    }

    /// True when no receiver is left.
    [[nodiscard]] bool is_closed() const { return receiver_count() == 0; }

    /// `co_await tx.closed()`: completes once every receiver is gone. Cancel-safe.
    class [[nodiscard]] closed_operation {
    public:
        explicit closed_operation(shared* s) noexcept : s_(s) {}
        closed_operation(closed_operation&& other) noexcept : s_(other.s_) {
            EDDY_ASSERT(!other.registered_);
        }
        closed_operation& operator=(closed_operation&&) = delete;
        ~closed_operation() {
            if (registered_)
                eddy::detail::withdraw(s_->lock, s_->tx_waiters, node_);
        }

        bool await_ready() const noexcept {
            return s_->receivers.load(eddy::detail::memory_order_acquire) == 0 &&
                   eddy::detail::coop::try_consume();
        }
        bool await_suspend(std::coroutine_handle<> h) {
            {
                std::lock_guard g(s_->lock);
                if (s_->receivers.load(eddy::detail::memory_order_acquire) != 0) {
                    node_.w = current_waker(h);
                    s_->tx_waiters.push_back(&node_);
                    registered_ = true;
                    return true;
                }
            }
            return eddy::detail::complete_or_yield(h);
        }
        void await_resume() noexcept { registered_ = false; }

    private:
        shared* s_;
        detail::waiter node_;
        bool registered_ = false;
    };

    /// See `closed_operation`.
    closed_operation closed() const {
        return closed_operation(detail::checked(h_.get(), "closed"));
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    template <class U>
    friend std::pair<sender<U>, receiver<U>> channel(U);
    explicit sender(shared* s) noexcept : h_(s) {}

    static void bump(shared* s) noexcept {
        // ORDERING: release (under the exclusive value lock) pairs with the acquire loads in
        // changed() and has_changed(): a receiver that sees the new version sees the value.
        s->state.fetch_add(shared::version_one, eddy::detail::memory_order_release);
    }

    eddy::detail::channel::handle<shared, detail::sender_ops<T>> h_;
};

/// A watch channel holding `init` (seen by the returned receiver).
template <class T>
std::pair<sender<T>, receiver<T>> channel(T init) {
    auto* s = new detail::shared<T>(std::move(init));
    return {sender<T>(s), receiver<T>(s, 0)};
}

} // namespace eddy::watch
