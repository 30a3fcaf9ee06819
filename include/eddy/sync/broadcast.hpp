#pragma once
//! `eddy::broadcast`: a multi-producer, multi-consumer channel where every receiver sees every
//! value (Tokio's `sync::broadcast`).
//!
//! ```cpp
//! auto [tx, rx] = eddy::broadcast::channel<event>(16);
//! auto rx2 = tx.subscribe();                     // sees values sent from now on
//! tx.send(ev);                                   // result<size_t>: receivers, or errc::closed
//! auto r = co_await rx.recv();                   // recv_result<event>
//! if (r.error() == eddy::errc::lagged) skipped(r.lagged());
//! ```
//!
//! - The channel retains the last `capacity` values (capacity >= 1, exactly as given). `send`
//!   never waits: when the buffer is full it overwrites the oldest value, and a receiver that
//!   had not read it yet gets `errc::lagged` from its next `recv`, with `lagged()` = the number
//!   of values it skipped, then continues from the oldest value still retained.
//! - `recv` gives `errc::closed` once every sender is gone and the receiver has read everything
//!   retained. `send` gives `errc::closed` when no receiver exists (the value is dropped).
//! - `T` must be copyable: each receiver gets its own copy, made under the channel's lock.
//! - Thread safety: senders (copyable) and receivers may be used from any threads at once, each
//!   handle by one task or thread at a time. Awaitables refer to their handle, which must outlive
//!   them.

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/blocking.hpp>
#include <eddy/detail/sync/channel/handle.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace eddy::broadcast {

/// What `recv`/`try_recv` return: a value, or `errc::lagged` (with `lagged()`, the number of
/// values skipped), `errc::closed` or (`try_recv` only) `errc::empty`.
template <class T>
class [[nodiscard]] recv_result : public result<T> {
public:
    using result<T>::result;

    /// A lag of `skipped` values.
    static recv_result make_lagged(std::uint64_t skipped) noexcept {
        recv_result r(errc::lagged);
        r.lagged_ = skipped;
        return r;
    }

    /// Values skipped when the error is `errc::lagged`; 0 otherwise.
    [[nodiscard]] std::uint64_t lagged() const noexcept { return lagged_; }

private:
    std::uint64_t lagged_ = 0;
};

template <class T>
class sender;
template <class T>
class receiver;

namespace detail {

struct waiter : eddy::detail::list_node<waiter> {
    waker w;
};

/// The shared state, all under `lock`. Position p (counting every value ever sent) lives in
/// `slots[p % capacity]` until position p + capacity overwrites it; `tail` is the next position.
template <class T>
class shared {
public:
    explicit shared(std::size_t capacity) : slots(capacity) {}

    void release() noexcept {
        // ORDERING: acq_rel so the deleting side sees every other owner's last use.
        if (refs_.fetch_sub(1, eddy::detail::memory_order_acq_rel) == 1)
            delete this;
    }
    void retain() noexcept { refs_.fetch_add(1, eddy::detail::memory_order_relaxed); }

    /// The oldest position still retained.
    [[nodiscard]] std::uint64_t oldest_locked() const noexcept {
        return tail > slots.size() ? tail - slots.size() : 0;
    }

    /// Whether a receiver at `next` would not wait.
    [[nodiscard]] bool ready_locked(std::uint64_t next) const noexcept {
        return next != tail || tx_count == 0;
    }

    /// One receive for a receiver at `*next`; only when ready_locked(*next). May throw what T's
    /// copy constructor throws (then nothing changed).
    recv_result<T> recv_locked(std::uint64_t* next) {
        if (*next == tail)
            return errc::closed;
        const std::uint64_t oldest = oldest_locked();
        if (*next < oldest) {
            const std::uint64_t skipped = oldest - *next;
            *next = oldest;
            return recv_result<T>::make_lagged(skipped);
        }
        const T& v = *slots[*next % slots.size()];
        recv_result<T> r(v);
        ++*next;
        return r;
    }

    void wake_all_locked(eddy::detail::wake_list& wakes) {
        while (waiter* w = waiters.front()) {
            wakes.push(std::move(w->w));
            waiters.remove(w);
        }
    }

    std::mutex lock;
    std::vector<std::optional<T>> slots;
    std::uint64_t tail = 0;
    std::size_t tx_count = 1;
    std::size_t rx_count = 1;
    eddy::detail::intrusive_list<waiter> waiters;

private:
    ~shared() = default;
    eddy::detail::atomic<std::uint32_t> refs_{2};
};

template <class S>
S* checked(S* s, const char* what) {
    if (s == nullptr) {
        throw std::logic_error(std::string("eddy::broadcast: ") + what +
                               " on an empty (moved-from) handle");
    }
    return s;
}

/// A sender's share: one of the senders that keep the channel open.
template <class T>
struct sender_ops {
    static void copy(shared<T>* s) noexcept {
        std::lock_guard g(s->lock);
        ++s->tx_count;
        s->retain();
    }
    static void drop(shared<T>* s) noexcept {
        {
            eddy::detail::wake_list wakes;
            std::lock_guard g(s->lock);
            if (--s->tx_count == 0)
                s->wake_all_locked(wakes); // closed: every waiting receiver sees it
        }
        s->release();
    }
};

/// A receiver's share.
template <class T>
struct receiver_ops {
    static void drop(shared<T>* s) noexcept {
        {
            std::lock_guard g(s->lock);
            --s->rx_count;
        }
        s->release();
    }
};

} // namespace detail

/// The sending half. Copyable.
template <class T>
class sender {
    using shared = detail::shared<T>;

public:
    sender() noexcept = default;

    [[nodiscard]] sender clone() const { return sender(*this); }

    /// Stores `v` for every current receiver and wakes those waiting; never waits. Returns the
    /// number of receivers, or `errc::closed` when there is none (the value is dropped). When
    /// the buffer is full the oldest value is overwritten (its laggards get `errc::lagged`).
    result<std::size_t> send(T v) {
        shared* s = detail::checked(h_.get(), "send");
        std::optional<T> old;
        eddy::detail::wake_list wakes;
        std::size_t receivers = 0;
        {
            std::lock_guard g(s->lock);
            if (s->rx_count == 0)
                return errc::closed;
            std::optional<T>& slot = s->slots[s->tail % s->slots.size()];
            old.swap(slot);
            slot.emplace(std::move(v));
            ++s->tail;
            s->wake_all_locked(wakes);
            receivers = s->rx_count;
        }
        wakes.wake_all();
        return receivers; // `old` is destroyed here, outside the lock
    }

    /// A new receiver that sees the values sent from now on.
    [[nodiscard]] receiver<T> subscribe() const {
        shared* s = detail::checked(h_.get(), "subscribe");
        std::lock_guard g(s->lock);
        ++s->rx_count;
        s->retain();
        return receiver<T>(s, s->tail);
    }

    [[nodiscard]] std::size_t receiver_count() const {
        shared* s = detail::checked(h_.get(), "receiver_count");
        std::lock_guard g(s->lock);
        return s->rx_count;
    }

    [[nodiscard]] bool same_channel(const sender& other) const noexcept { return h_ == other.h_; }
    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    template <class U>
    friend std::pair<sender<U>, receiver<U>> channel(std::size_t);
    explicit sender(shared* s) noexcept : h_(s) {}

    eddy::detail::channel::handle<shared, detail::sender_ops<T>> h_;
};

/// The receiving half. Move-only; `resubscribe()` makes another one.
template <class T>
class receiver {
    using shared = detail::shared<T>;
    using mode = eddy::detail::wait_mode;

public:
    receiver() noexcept = default;

    /// `co_await rx.recv()`: the next value, waiting while there is none; see `recv_result`.
    /// Resumes on a worker of this task's runtime, woken by the sender. Cancel-safe: the value
    /// is copied out only when the task resumes, so a destroyed awaiter loses nothing (the next
    /// `recv` gets the value).
    class [[nodiscard]] recv_operation {
    public:
        explicit recv_operation(receiver* rx) noexcept : rx_(rx) {}
        recv_operation(recv_operation&& other) noexcept : rx_(other.rx_) {
            EDDY_ASSERT(other.mode_ == mode::idle);
        }
        recv_operation& operator=(recv_operation&&) = delete;
        ~recv_operation() {
            if (mode_ == mode::waiting) {
                shared* s = rx_->h_.get();
                eddy::detail::withdraw(s->lock, s->waiters, node_);
            }
        }

        bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            shared* s = rx_->h_.get();
            {
                std::lock_guard g(s->lock);
                if (!s->ready_locked(rx_->next_)) {
                    node_.w = current_waker(h);
                    s->waiters.push_back(&node_);
                    mode_ = mode::waiting;
                    return true;
                }
                if (eddy::detail::coop::try_consume()) {
                    out_.emplace(s->recv_locked(&rx_->next_));
                    return false;
                }
            }
            mode_ = mode::yielded;
            eddy::detail::coop::yield_current(h);
            return true;
        }

        recv_result<T> await_resume() {
            if (mode_ != mode::idle) {
                mode_ = mode::idle;
                std::lock_guard g(rx_->h_.get()->lock);
                EDDY_ASSERT(rx_->h_.get()->ready_locked(rx_->next_));
                out_.emplace(rx_->h_.get()->recv_locked(&rx_->next_));
            }
            return std::move(*out_);
        }

    private:
        receiver* rx_;
        detail::waiter node_;
        std::optional<recv_result<T>> out_;
        mode mode_ = mode::idle;
    };

    /// See `recv_operation`.
    recv_operation recv() {
        detail::checked(h_.get(), "recv");
        return recv_operation(this);
    }

    /// Without waiting: a value, `errc::empty`, `errc::lagged` or `errc::closed`.
    recv_result<T> try_recv() {
        shared* s = detail::checked(h_.get(), "try_recv");
        std::lock_guard g(s->lock);
        if (!s->ready_locked(next_))
            return errc::empty;
        return s->recv_locked(&next_);
    }

    /// Like `recv`, for a plain thread outside the runtime. Throws `std::logic_error` on a
    /// thread that runs a runtime's tasks.
    recv_result<T> blocking_recv() {
        shared* s = detail::checked(h_.get(), "blocking_recv");
        eddy::detail::check_blocking_allowed("eddy::broadcast::receiver::blocking_recv");
        eddy::detail::blocking_waiter bw;
        detail::waiter node;
        for (;;) {
            {
                std::lock_guard g(s->lock);
                if (node.linked())
                    s->waiters.remove(&node);
                if (s->ready_locked(next_))
                    return s->recv_locked(&next_);
                node.w = bw.make();
                s->waiters.push_back(&node);
            }
            bw.park();
        }
    }

    /// Another receiver on the same channel that sees the values sent from now on.
    [[nodiscard]] receiver resubscribe() const {
        shared* s = detail::checked(h_.get(), "resubscribe");
        std::lock_guard g(s->lock);
        ++s->rx_count;
        s->retain();
        return receiver(s, s->tail);
    }

    /// Values this receiver has not read yet and that are still retained.
    [[nodiscard]] std::size_t size() const {
        shared* s = detail::checked(h_.get(), "size");
        std::lock_guard g(s->lock);
        const std::uint64_t from = std::max(next_, s->oldest_locked());
        return static_cast<std::size_t>(s->tail - from);
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    friend class sender<T>;
    template <class U>
    friend std::pair<sender<U>, receiver<U>> channel(std::size_t);
    receiver(shared* s, std::uint64_t next) noexcept : h_(s), next_(next) {}

    eddy::detail::channel::handle<shared, detail::receiver_ops<T>> h_;
    std::uint64_t next_ = 0; ///< the position this receiver reads next
};

/// A broadcast channel retaining the last `capacity` (>= 1) values; `std::invalid_argument`
/// for 0.
template <class T>
std::pair<sender<T>, receiver<T>> channel(std::size_t capacity) {
    static_assert(std::is_copy_constructible_v<T>, "eddy::broadcast needs a copyable value type");
    if (capacity == 0)
        throw std::invalid_argument("eddy::broadcast::channel: capacity must be at least 1");
    auto* s = new detail::shared<T>(capacity);
    return {sender<T>(s), receiver<T>(s, 0)};
}

} // namespace eddy::broadcast
