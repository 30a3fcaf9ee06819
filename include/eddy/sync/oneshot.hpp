#pragma once
//! `eddy::oneshot`: a channel for exactly one value (Tokio's `sync::oneshot`).
//!
//! ```cpp
//! auto [tx, rx] = eddy::oneshot::channel<int>();
//! eddy::spawn([tx = std::move(tx)]() mutable -> eddy::task<> { tx.send(42); co_return; });
//! eddy::result<int> v = co_await rx;   // 42, or errc::closed if the sender was dropped unsent
//! ```
//!
//! - `sender<T>::send(v)` stores the value and wakes the receiver; it never waits. It fails with
//!   `errc::closed`, handing `v` back, when the receiver was closed or dropped. Sending consumes
//!   the sender (it becomes empty, like a moved-from one), whether or not it succeeded.
//! - `co_await rx` gives the value, `errc::closed` when the sender was dropped without sending,
//!   or `errc::already_taken` when the value was already received.
//! - `receiver::close()` stops future sends; a value sent before it can still be received.
//!   Dropping the receiver destroys a value that was sent but not received.
//! - `co_await tx.closed()` completes once the receiver is closed or dropped.
//! - Thread safety: the sender and the receiver may be used from different threads at once; each
//!   of them by one task or thread at a time. The objects returned by `closed()` and
//!   `operator co_await` refer to their handle, which must outlive them.
//! - Value type: nothrow move-constructible, noexcept destructor. A live value is never destroyed
//!   under the channel's lock (only moved-from shells are).

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/blocking.hpp>
#include <eddy/detail/sync/channel/handle.hpp>
#include <eddy/detail/sync/channel/send_result.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/waiting.hpp>

#include <coroutine>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace eddy::oneshot {

/// Outcome of `sender::send`: success, or `errc::closed` with the value handed back.
template <class T>
using send_result = detail::channel::send_result<T>;

template <class T>
class sender;
template <class T>
class receiver;

namespace detail {

/// The shared state. Every field but the atomics is guarded by `lock`.
template <class T>
class state {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "eddy::oneshot needs a nothrow move-constructible value type");

public:
    void release() noexcept {
        // ORDERING: acq_rel so the deleting side sees the other side's last use.
        if (refs_.fetch_sub(1, eddy::detail::memory_order_acq_rel) == 1)
            delete this;
    }

    /// Whether `co_await rx` would complete now. Under the lock.
    [[nodiscard]] bool rx_ready_locked() const noexcept {
        return value.has_value() || taken || tx_gone;
    }

    /// The receiver's outcome. Under the lock; only when rx_ready_locked().
    result<T> take_locked() noexcept {
        if (value.has_value()) {
            taken = true;
            result<T> r(std::move(*value));
            value.reset();
            return r;
        }
        return taken ? errc::already_taken : errc::closed;
    }

    eddy::detail::spin_lock lock;
    std::optional<T> value;
    waker rx_waker;                              ///< the receiver's, while it waits for the value
    waker tx_waker;                              ///< the sender's, while it waits in closed()
    bool taken = false;                          ///< the value was received
    bool tx_gone = false;                        ///< the sender sent or was dropped
    eddy::detail::atomic<bool> rx_closed{false}; ///< written under the lock

private:
    eddy::detail::atomic<std::uint32_t> refs_{2};
};

template <class T>
state<T>* checked(state<T>* s, const char* what) {
    if (s == nullptr) {
        throw std::logic_error(std::string("eddy::oneshot: ") + what +
                               " on an empty handle (moved-from, or the value was already sent)");
    }
    return s;
}

/// The sender's share. Dropping it unsent tells the receiver (`errc::closed`).
template <class T>
struct sender_ops {
    static void drop(state<T>* s) noexcept {
        waker rx;
        {
            std::lock_guard g(s->lock);
            s->tx_gone = true;
            rx = std::move(s->rx_waker);
        }
        rx.wake();
        s->release();
    }
};

/// The receiver's share. Dropping it closes the channel and destroys a value not received.
template <class T>
struct receiver_ops {
    static void drop(state<T>* s) noexcept {
        std::optional<T> doomed;
        waker tx;
        {
            std::lock_guard g(s->lock);
            s->rx_closed.store(true, eddy::detail::memory_order_release);
            if (s->value.has_value()) {
                doomed.emplace(std::move(*s->value));
                s->value.reset();
            }
            tx = std::move(s->tx_waker);
        }
        tx.wake();
        doomed.reset(); // outside the lock
        s->release();
    }
};

} // namespace detail

template <class T>
std::pair<sender<T>, receiver<T>> channel();

/// The sending half. Move-only; consumed by `send`.
template <class T>
class sender {
    using state = detail::state<T>;

public:
    sender() noexcept = default;

    /// Stores `v` for the receiver and wakes it. Never waits. `errc::closed` (value handed back)
    /// if the receiver is closed or dropped. The sender is empty afterwards.
    send_result<T> send(T v) {
        detail::checked(h_.get(), "send");
        state* s = h_.release();
        waker rx;
        bool closed = false;
        {
            std::lock_guard g(s->lock);
            s->tx_gone = true;
            if (s->rx_closed.load(eddy::detail::memory_order_relaxed)) {
                closed = true;
            } else {
                s->value.emplace(std::move(v));
                rx = std::move(s->rx_waker);
            }
        }
        rx.wake();
        s->release();
        if (closed)
            return {errc::closed, std::move(v)};
        return {};
    }

    /// True once the receiver is closed or dropped.
    [[nodiscard]] bool is_closed() const {
        // ORDERING: acquire pairs with the release in receiver::close / drop.
        return detail::checked(h_.get(), "is_closed")
            ->rx_closed.load(eddy::detail::memory_order_acquire);
    }

    /// `co_await tx.closed()`: completes once the receiver is closed or dropped. Cancel-safe
    /// (nothing to lose): a destroyed awaiter withdraws its waker.
    class [[nodiscard]] closed_operation {
    public:
        explicit closed_operation(state* s) noexcept : s_(s) {}
        closed_operation(closed_operation&& other) noexcept : s_(other.s_) {
            EDDY_ASSERT(!other.registered_);
        }
        closed_operation& operator=(closed_operation&&) = delete;
        ~closed_operation() {
            if (registered_)
                eddy::detail::withdraw(s_->lock, s_->tx_waker);
        }

        [[nodiscard]] bool await_ready() const noexcept {
            return s_->rx_closed.load(eddy::detail::memory_order_acquire) &&
                   eddy::detail::coop::try_consume();
        }
        bool await_suspend(std::coroutine_handle<> h) {
            {
                std::lock_guard g(s_->lock);
                if (!s_->rx_closed.load(eddy::detail::memory_order_relaxed)) {
                    s_->tx_waker = current_waker(h);
                    registered_ = true;
                    return true;
                }
            }
            return eddy::detail::complete_or_yield(h);
        }
        void await_resume() noexcept { registered_ = false; }

    private:
        state* s_;
        bool registered_ = false;
    };

    /// See `closed_operation`.
    closed_operation closed() const {
        return closed_operation(detail::checked(h_.get(), "closed"));
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    friend std::pair<sender<T>, receiver<T>> channel<T>();
    explicit sender(state* s) noexcept : h_(s) {}

    eddy::detail::channel::handle<state, detail::sender_ops<T>> h_;
};

/// The receiving half. Move-only. `co_await rx` receives.
template <class T>
class receiver {
    using state = detail::state<T>;

public:
    receiver() noexcept = default;

    /// `co_await rx`: suspends until the value is sent (or the sender dropped) and returns it;
    /// resumes on a worker of this task's runtime, woken by the sending thread. Cancel-safe: if
    /// the awaiting task is destroyed while suspended, the value (if it arrived meanwhile) stays
    /// in the channel for the next `co_await rx` / `try_recv`.
    class [[nodiscard]] recv_operation {
    public:
        explicit recv_operation(state* s) noexcept : s_(s) {}
        recv_operation(recv_operation&& other) noexcept : s_(other.s_) {
            EDDY_ASSERT(other.mode_ == mode::idle);
        }
        recv_operation& operator=(recv_operation&&) = delete;
        ~recv_operation() {
            if (mode_ == mode::waiting)
                eddy::detail::withdraw(s_->lock, s_->rx_waker);
        }

        bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            {
                std::lock_guard g(s_->lock);
                if (!s_->rx_ready_locked()) {
                    s_->rx_waker = current_waker(h);
                    mode_ = mode::waiting;
                    return true;
                }
                if (eddy::detail::coop::try_consume()) {
                    out_.emplace(s_->take_locked());
                    return false;
                }
            }
            mode_ = mode::yielded;
            eddy::detail::coop::yield_current(h);
            return true;
        }

        result<T> await_resume() {
            if (mode_ != mode::idle) {
                mode_ = mode::idle;
                std::lock_guard g(s_->lock);
                EDDY_ASSERT(s_->rx_ready_locked());
                out_.emplace(s_->take_locked());
            }
            return std::move(*out_);
        }

    private:
        using mode = eddy::detail::wait_mode;
        state* s_;
        std::optional<result<T>> out_;
        mode mode_ = mode::idle;
    };

    recv_operation operator co_await() & {
        return recv_operation(detail::checked(h_.get(), "co_await"));
    }
    recv_operation operator co_await() && {
        return recv_operation(detail::checked(h_.get(), "co_await"));
    }

    /// Without waiting: the value, `errc::empty` (not sent yet), `errc::closed` (sender dropped
    /// unsent) or `errc::already_taken`.
    result<T> try_recv() {
        state* s = detail::checked(h_.get(), "try_recv");
        std::lock_guard g(s->lock);
        if (!s->rx_ready_locked())
            return errc::empty;
        return s->take_locked();
    }

    /// Like `co_await rx`, for a plain thread outside the runtime: parks the thread until the
    /// value is sent or the sender dropped. Throws `std::logic_error` on a runtime thread.
    result<T> blocking_recv() {
        state* s = detail::checked(h_.get(), "blocking_recv");
        eddy::detail::check_blocking_allowed("eddy::oneshot::receiver::blocking_recv");
        eddy::detail::blocking_waiter bw;
        for (;;) {
            {
                waker stale;
                std::lock_guard g(s->lock);
                if (s->rx_ready_locked()) {
                    stale = std::move(s->rx_waker);
                    return s->take_locked();
                }
                s->rx_waker = bw.make();
            }
            bw.park();
        }
    }

    /// Refuses the value from now on (`send` fails with `errc::closed`) and completes the
    /// sender's `closed()`. A value sent before remains receivable. Idempotent.
    void close() {
        state* s = detail::checked(h_.get(), "close");
        waker tx;
        {
            std::lock_guard g(s->lock);
            // ORDERING: release pairs with the acquire in sender::is_closed.
            s->rx_closed.store(true, eddy::detail::memory_order_release);
            tx = std::move(s->tx_waker);
        }
        tx.wake();
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    friend std::pair<sender<T>, receiver<T>> channel<T>();
    explicit receiver(state* s) noexcept : h_(s) {}

    eddy::detail::channel::handle<state, detail::receiver_ops<T>> h_;
};

/// A new oneshot channel.
template <class T>
std::pair<sender<T>, receiver<T>> channel() {
    auto* s = new detail::state<T>();
    return {sender<T>(s), receiver<T>(s)};
}

} // namespace eddy::oneshot
