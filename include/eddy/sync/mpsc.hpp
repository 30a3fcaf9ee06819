#pragma once
//! `eddy::mpsc`: multi-producer, single-consumer channels (Tokio's `sync::mpsc`).
//!
//! ```cpp
//! auto [tx, rx] = eddy::mpsc::channel<job>(1024);     // bounded: send suspends while full
//! auto r = co_await tx.send(job{...});                 // send_result<job>: closed -> value back
//! while (auto j = co_await rx.recv()) handle(*j);      // nullopt: closed and drained
//! auto [utx, urx] = eddy::mpsc::unbounded_channel<int>();
//! utx.send(1);                                         // never suspends
//! ```
//!
//! - `channel<T>(capacity)` (capacity >= 1, else `std::invalid_argument`) gives a `sender<T>` and
//!   a `receiver<T>`. At most `capacity` messages are buffered or reserved at once; `send` and
//!   `reserve` suspend while the channel is full and are served in the order they suspended.
//!   `unbounded_channel<T>()` gives an `unbounded_sender<T>`, whose `send` never waits (memory is
//!   the only bound: invariant 5 says so in the name).
//! - Senders are copyable (`clone()` says the same); each copy counts. The receiver sees "closed"
//!   (`recv` returns `std::nullopt`, `try_recv` `errc::closed`) once every sender and every
//!   `permit` is gone and the buffer is drained, or after `receiver::close()` once it is drained.
//!   Senders fail with `errc::closed` (value handed back) once the receiver is closed or dropped.
//!   Dropping the receiver destroys the buffered messages.
//! - Thread safety: a sender (or its copies) may be used from any number of tasks and threads at
//!   once; the receiver, like Tokio's `&mut self` API, by one task or thread at a time. The
//!   objects returned by `send`, `reserve`, `recv`, ... refer to their sender or receiver, which
//!   must outlive them.
//! - Message type: nothrow move-constructible, with a noexcept destructor. A live message is
//!   never destroyed under the channel's lock (only moved-from shells are), so a message's
//!   destructor may use the channel, e.g. drop a sender of it.
//! - Wakes: a sender wakes the receiver only when it is waiting, never per message otherwise; a
//!   popped message wakes at most one suspended sender. All ready paths spend cooperative budget.

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/blocking.hpp>
#include <eddy/detail/sync/channel/handle.hpp>
#include <eddy/detail/sync/channel/mpsc_chan.hpp>
#include <eddy/detail/sync/channel/send_result.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/sync/wake_list.hpp>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace eddy::mpsc {

/// Outcome of a send: success, or `errc::closed` / `errc::full` with the value handed back
/// (`rejected()`). See detail/sync/channel/send_result.hpp.
template <class T>
using send_result = detail::channel::send_result<T>;

template <class T>
class sender;
template <class T>
class unbounded_sender;
template <class T>
class receiver;

namespace detail {

using eddy::detail::channel::mpsc_chan;
using eddy::detail::channel::send_status;
using eddy::detail::channel::send_waiter;

template <class T>
mpsc_chan<T>* checked(mpsc_chan<T>* c, const char* what) {
    if (c == nullptr)
        throw std::logic_error(std::string("eddy::mpsc: ") + what +
                               " on an empty (moved-from) handle");
    return c;
}

/// A sender's share (both sender kinds): one of the senders that keep the channel open.
template <class T>
struct sender_ops {
    static void copy(mpsc_chan<T>* c) noexcept { c->add_sender(); }
    static void drop(mpsc_chan<T>* c) noexcept { c->drop_sender(); }
};
template <class T>
using sender_handle = eddy::detail::channel::handle<mpsc_chan<T>, sender_ops<T>>;

/// Uses (`value` != nullptr) or returns a reserved slot and gives up the permit's share.
template <class T>
void finish_permit(mpsc_chan<T>* c, std::optional<T>* value) noexcept {
    waker sw;
    waker rx;
    {
        std::lock_guard g(c->lock);
        c->finish_permit_locked(value, sw, rx);
    }
    sw.wake();
    rx.wake();
    c->release();
}

/// A permit's share: an unused permit returns its slot.
template <class T>
struct permit_ops {
    static void drop(mpsc_chan<T>* c) noexcept { finish_permit<T>(c, nullptr); }
};

/// The receiver's share. Dropping it closes the channel and destroys the buffered messages.
template <class T>
struct receiver_ops {
    static void drop(mpsc_chan<T>* c) noexcept {
        eddy::detail::channel::ring<T> doomed;
        {
            eddy::detail::wake_list wakes;
            {
                std::lock_guard g(c->lock);
                // Only the spill of more than eight wakers can throw; a failed allocation here
                // leaves no sane way on.
                c->close_rx_locked(wakes);
                c->rx_dropped = true;
                doomed = std::move(c->queue);
            }
        }
        doomed.clear(); // the messages' destructors run outside the lock
        c->rx_local.clear();
        c->release();
    }
};

/// `closed()` of both sender kinds: completes once the receiver is closed or dropped.
template <class T>
class closed_operation {
public:
    explicit closed_operation(mpsc_chan<T>* c) noexcept : c_(c) {}
    closed_operation(closed_operation&& other) noexcept : c_(other.c_) {
        EDDY_ASSERT(!other.registered_);
    }
    closed_operation& operator=(closed_operation&&) = delete;
    ~closed_operation() {
        if (registered_)
            eddy::detail::withdraw(c_->lock, c_->closed_waiters, node_);
    }

    [[nodiscard]] bool await_ready() const noexcept {
        // ORDERING: acquire pairs with the release in close_rx_locked.
        return c_->rx_closed.load(eddy::detail::memory_order_acquire) &&
               eddy::detail::coop::try_consume();
    }
    bool await_suspend(std::coroutine_handle<> h) {
        {
            std::lock_guard g(c_->lock);
            if (!c_->rx_closed.load(eddy::detail::memory_order_relaxed)) {
                node_.w = current_waker(h);
                c_->closed_waiters.push_back(&node_);
                registered_ = true;
                return true;
            }
        }
        return eddy::detail::complete_or_yield(h);
    }
    void await_resume() noexcept { registered_ = false; }

private:
    mpsc_chan<T>* c_;
    eddy::detail::channel::closed_waiter node_;
    bool registered_ = false;
};

} // namespace detail

/// A slot reserved in a bounded channel by `sender::reserve()`: `send(v)` cannot fail and never
/// waits. Dropping it unused returns the slot (to the next suspended sender, if any). Move-only.
/// Keeps the channel open for the receiver until it is used or dropped.
template <class T>
class [[nodiscard]] permit {
public:
    permit() noexcept = default;

    /// Sends `v` into the reserved slot and consumes the permit. If the receiver was dropped
    /// meanwhile, `v` is destroyed (as it would have been in the buffer).
    void send(T v) {
        detail::checked(h_.get(), "permit::send");
        std::optional<T> value(std::move(v));
        detail::finish_permit(h_.release(), &value);
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    template <class>
    friend class sender;
    explicit permit(detail::mpsc_chan<T>* c) noexcept : h_(c) { c->retain(); }

    eddy::detail::channel::handle<detail::mpsc_chan<T>, detail::permit_ops<T>> h_;
};

/// The sending half of a bounded channel. Copyable; see the header comment.
template <class T>
class sender {
    using chan = detail::mpsc_chan<T>;

public:
    sender() noexcept = default;

    /// Another sender for the same channel.
    [[nodiscard]] sender clone() const { return sender(*this); }

    /// `co_await tx.send(v)`: delivers `v`, suspending while the channel is full; resumes on a
    /// worker of this task's runtime, woken by the receiver freeing a slot. Returns success, or
    /// `errc::closed` with `v` handed back when the receiver is closed or dropped (also while
    /// suspended).
    ///
    /// Cancel-safe: if the awaiting task is destroyed while suspended here, the value is destroyed
    /// with it and nothing is enqueued, unless the send was already granted, in which case the
    /// value was delivered in full before the cancellation (a grant moves the value into the
    /// channel under the lock: there is no state in between). Cancelling loses the place in line.
    class [[nodiscard]] send_operation {
    public:
        send_operation(chan* c, T&& v) : c_(c), value_(std::move(v)) {}
        send_operation(send_operation&& other) noexcept
            : c_(other.c_), value_(std::move(other.value_)) {
            EDDY_ASSERT(!other.registered_);
        }
        send_operation& operator=(send_operation&&) = delete;
        ~send_operation() {
            if (registered_)
                eddy::detail::withdraw(c_->lock, c_->send_waiters, node_);
        }

        bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            waker rx;
            {
                std::lock_guard g(c_->lock);
                const detail::send_status s = c_->try_send_locked(value_, rx);
                if (s == detail::send_status::full) {
                    node_.value = &value_;
                    node_.w = current_waker(h);
                    c_->send_waiters.push_back(&node_);
                    registered_ = true;
                    return true;
                }
                node_.status = s;
            }
            rx.wake();
            // Ready (sent or closed): spend budget, or yield with the outcome already settled.
            return eddy::detail::complete_or_yield(h);
        }

        send_result<T> await_resume() {
            // ORDERING: a grant wrote node_.status under the lock before the wake that resumed
            // us; the task state transitions carry that to this thread.
            registered_ = false;
            if (node_.status == detail::send_status::done)
                return {};
            EDDY_ASSERT(node_.status == detail::send_status::closed);
            return {errc::closed, std::move(*value_)};
        }

    private:
        chan* c_;
        std::optional<T> value_;
        detail::send_waiter<T> node_;
        bool registered_ = false;
    };

    /// `co_await tx.reserve()`: waits for a slot like `send` and returns a `permit` for it, or
    /// `errc::closed`. Cancel-safe: a permit granted to a task cancelled before it resumed is
    /// returned to the next suspended sender (or the pool); cancelling loses the place in line.
    class [[nodiscard]] reserve_operation {
    public:
        explicit reserve_operation(chan* c) noexcept : c_(c) {}
        reserve_operation(reserve_operation&& other) noexcept : c_(other.c_) {
            EDDY_ASSERT(!other.registered_);
        }
        reserve_operation& operator=(reserve_operation&&) = delete;
        ~reserve_operation() {
            if (!registered_)
                return;
            waker w;
            waker sw;
            waker rx;
            {
                std::lock_guard g(c_->lock);
                if (node_.linked()) {
                    c_->send_waiters.remove(&node_);
                    w = std::move(node_.w);
                } else if (node_.status == detail::send_status::done) {
                    // Granted, but never resumed: hand the slot on.
                    c_->finish_permit_locked(nullptr, sw, rx);
                }
            }
            sw.wake();
            rx.wake();
        }

        bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            {
                std::lock_guard g(c_->lock);
                if (c_->rx_closed.load(eddy::detail::memory_order_relaxed)) {
                    node_.status = detail::send_status::closed;
                } else if (c_->take_free_slot_locked()) {
                    ++c_->permits_out;
                    node_.status = detail::send_status::done;
                } else {
                    node_.w = current_waker(h);
                    c_->send_waiters.push_back(&node_);
                    registered_ = true;
                    return true;
                }
            }
            if (eddy::detail::coop::try_consume())
                return false;
            // Out of budget: yield. If the task is cancelled before it resumes, the destructor
            // (registered_ set, node unlinked, status done) returns the permit taken above.
            registered_ = true;
            eddy::detail::coop::yield_current(h);
            return true;
        }

        result<permit<T>> await_resume() {
            registered_ = false;
            if (node_.status == detail::send_status::done)
                return permit<T>(c_);
            EDDY_ASSERT(node_.status == detail::send_status::closed);
            return errc::closed;
        }

    private:
        chan* c_;
        detail::send_waiter<T> node_;
        bool registered_ = false;
    };

    /// See `send_operation`.
    send_operation send(T v) {
        return send_operation(detail::checked(h_.get(), "send"), std::move(v));
    }

    /// Sends without waiting: `errc::full` (no free slot, or senders already waiting) or
    /// `errc::closed`, the value handed back in both cases.
    send_result<T> try_send(T v) {
        chan* c = detail::checked(h_.get(), "try_send");
        std::optional<T> value(std::move(v));
        waker rx;
        detail::send_status s;
        {
            std::lock_guard g(c->lock);
            s = c->try_send_locked(value, rx);
        }
        rx.wake();
        if (s == detail::send_status::done)
            return {};
        return {s == detail::send_status::full ? errc::full : errc::closed, std::move(*value)};
    }

    /// See `reserve_operation`.
    reserve_operation reserve() { return reserve_operation(detail::checked(h_.get(), "reserve")); }

    /// `co_await tx.send_timeout(v, d)`: `send`, giving up after `d` with `errc::timed_out` and
    /// the value handed back (`rejected()`). Cancel-safe like `send`: it waits for a slot with
    /// `reserve` (a slot granted too late passes to the next sender) and only then moves `v` in.
    template <class Rep, class Period>
    task<send_result<T>> send_timeout(T v, std::chrono::duration<Rep, Period> d) {
        auto r = co_await eddy::timeout(d, reserve());
        if (!r)
            co_return send_result<T>(errc::timed_out, std::move(v));
        if (!*r)
            co_return send_result<T>(errc::closed, std::move(v));
        (**r).send(std::move(v));
        co_return send_result<T>();
    }

    /// A permit without waiting: `errc::full` or `errc::closed`.
    result<permit<T>> try_reserve() {
        chan* c = detail::checked(h_.get(), "try_reserve");
        {
            std::lock_guard g(c->lock);
            if (c->rx_closed.load(eddy::detail::memory_order_relaxed))
                return errc::closed;
            if (!c->take_free_slot_locked())
                return errc::full;
            ++c->permits_out;
        }
        return permit<T>(c);
    }

    /// Like `send`, for a plain thread outside the runtime: parks the thread while the channel is
    /// full. Throws `std::logic_error` on a thread that runs a runtime's tasks.
    send_result<T> blocking_send(T v) {
        chan* c = detail::checked(h_.get(), "blocking_send");
        eddy::detail::check_blocking_allowed("eddy::mpsc::sender::blocking_send");
        eddy::detail::blocking_waiter bw;
        std::optional<T> value(std::move(v));
        detail::send_waiter<T> node;
        waker rx;
        {
            std::lock_guard g(c->lock);
            const detail::send_status s = c->try_send_locked(value, rx);
            if (s == detail::send_status::full) {
                node.value = &value;
                node.w = bw.make();
                c->send_waiters.push_back(&node);
            } else {
                node.status = s;
            }
        }
        rx.wake();
        for (;;) {
            {
                std::lock_guard g(c->lock);
                if (node.status != detail::send_status::waiting)
                    break;
            }
            bw.park();
        }
        if (node.status == detail::send_status::done)
            return {};
        return {errc::closed, std::move(*value)};
    }

    /// Completes once the receiver is closed or dropped. Cancel-safe (nothing to lose).
    [[nodiscard]] detail::closed_operation<T> closed() const {
        return detail::closed_operation<T>(detail::checked(h_.get(), "closed"));
    }

    /// True once the receiver is closed or dropped.
    [[nodiscard]] bool is_closed() const {
        // ORDERING: acquire pairs with the release in close_rx_locked.
        return detail::checked(h_.get(), "is_closed")
            ->rx_closed.load(eddy::detail::memory_order_acquire);
    }

    /// Whether both senders feed the same channel.
    [[nodiscard]] bool same_channel(const sender& other) const noexcept { return h_ == other.h_; }

    /// The channel's capacity.
    [[nodiscard]] std::size_t max_capacity() const {
        return detail::checked(h_.get(), "max_capacity")->capacity;
    }

    /// Slots free right now (a snapshot).
    [[nodiscard]] std::size_t capacity() const {
        chan* c = detail::checked(h_.get(), "capacity");
        std::lock_guard g(c->lock);
        return c->free_permits + c->unreleased.load(eddy::detail::memory_order_relaxed);
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    template <class U>
    friend std::pair<sender<U>, receiver<U>> channel(std::size_t);
    explicit sender(chan* c) noexcept : h_(c) {}

    detail::sender_handle<T> h_;
};

/// The sending half of an unbounded channel: `send` never waits. Copyable.
template <class T>
class unbounded_sender {
    using chan = detail::mpsc_chan<T>;

public:
    unbounded_sender() noexcept = default;

    [[nodiscard]] unbounded_sender clone() const { return unbounded_sender(*this); }

    /// Appends `v` and returns at once (synchronous: not an awaitable). `errc::closed` with the
    /// value handed back when the receiver is closed or dropped. Throws `std::bad_alloc` if the
    /// buffer cannot grow (the value is then destroyed).
    send_result<T> send(T v) {
        chan* c = detail::checked(h_.get(), "send");
        waker rx;
        {
            std::lock_guard g(c->lock);
            if (c->rx_closed.load(eddy::detail::memory_order_relaxed))
                return {errc::closed, std::move(v)};
            c->queue.push_back(std::move(v));
            c->take_rx_waker(rx);
        }
        rx.wake();
        return {};
    }

    /// Completes once the receiver is closed or dropped. Cancel-safe (nothing to lose).
    [[nodiscard]] detail::closed_operation<T> closed() const {
        return detail::closed_operation<T>(detail::checked(h_.get(), "closed"));
    }

    /// True once the receiver is closed or dropped.
    [[nodiscard]] bool is_closed() const {
        return detail::checked(h_.get(), "is_closed")
            ->rx_closed.load(eddy::detail::memory_order_acquire);
    }

    [[nodiscard]] bool same_channel(const unbounded_sender& other) const noexcept {
        return h_ == other.h_;
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    template <class U>
    friend std::pair<unbounded_sender<U>, receiver<U>> unbounded_channel();
    explicit unbounded_sender(chan* c) noexcept : h_(c) {}

    detail::sender_handle<T> h_;
};

/// The receiving half (of a bounded or an unbounded channel). Move-only; one user at a time.
template <class T>
class receiver {
    using chan = detail::mpsc_chan<T>;

    /// How a receive operation left `await_suspend`.
    using mode = eddy::detail::wait_mode;

public:
    receiver() noexcept = default;

    /// `co_await rx.recv()`: the oldest message, or `std::nullopt` once the channel is closed
    /// and drained. Suspends while empty; resumes on a worker of this task's runtime, woken by
    /// the sender that pushed (or by the close).
    ///
    /// Cancel-safe: if the awaiting task is destroyed while suspended here, no message is lost
    /// (a wake only says "a message is there"; the message is taken when the task resumes, so
    /// the next `recv` gets it).
    class [[nodiscard]] recv_operation {
    public:
        explicit recv_operation(chan* c) noexcept : c_(c) {}
        recv_operation(recv_operation&& other) noexcept : c_(other.c_) {
            EDDY_ASSERT(other.mode_ == mode::idle);
        }
        recv_operation& operator=(recv_operation&&) = delete;
        ~recv_operation() {
            if (mode_ == mode::waiting)
                eddy::detail::withdraw(c_->lock, c_->rx_waker);
        }

        bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            if (!c_->rx_local.empty()) {
                if (eddy::detail::coop::try_consume()) {
                    c_->pop_local(out_);
                    return false;
                }
                mode_ = mode::yielded;
                eddy::detail::coop::yield_current(h);
                return true;
            }
            waker sw;
            {
                std::lock_guard g(c_->lock);
                if (!c_->rx_ready_locked()) {
                    c_->rx_waker = current_waker(h);
                    mode_ = mode::waiting;
                    return true;
                }
                if (eddy::detail::coop::try_consume()) {
                    if (!c_->queue.empty())
                        c_->pop_locked(out_, sw);
                } else {
                    mode_ = mode::yielded;
                }
            }
            sw.wake();
            if (mode_ == mode::yielded) {
                eddy::detail::coop::yield_current(h);
                return true;
            }
            return false;
        }

        std::optional<T> await_resume() {
            if (mode_ != mode::idle) {
                mode_ = mode::idle;
                if (c_->pop_local(out_))
                    return std::move(out_);
                waker sw;
                {
                    std::lock_guard g(c_->lock);
                    // Woken (or yielded) only when ready; only this receiver pops.
                    EDDY_ASSERT(c_->rx_ready_locked());
                    if (!c_->queue.empty())
                        c_->pop_locked(out_, sw);
                }
                sw.wake();
            }
            return std::move(out_);
        }

    private:
        chan* c_;
        std::optional<T> out_;
        mode mode_ = mode::idle;
    };

    /// `co_await rx.recv_many(buf, limit)`: appends up to `limit` messages to `buf` (waiting for
    /// at least one) and returns how many; 0 once closed and drained (or when `limit` is 0).
    /// Cancel-safe like `recv`: messages are taken only when the task resumes. `buf` must
    /// outlive the operation.
    class [[nodiscard]] recv_many_operation {
    public:
        recv_many_operation(chan* c, std::vector<T>& buf, std::size_t limit) noexcept
            : c_(c), buf_(&buf), limit_(limit) {}
        recv_many_operation(recv_many_operation&& other) noexcept
            : c_(other.c_), buf_(other.buf_), limit_(other.limit_) {
            EDDY_ASSERT(other.mode_ == mode::idle);
        }
        recv_many_operation& operator=(recv_many_operation&&) = delete;
        ~recv_many_operation() {
            if (mode_ == mode::waiting)
                eddy::detail::withdraw(c_->lock, c_->rx_waker);
        }

        bool await_ready() const noexcept { return limit_ == 0; }

        bool await_suspend(std::coroutine_handle<> h) {
            {
                std::lock_guard g(c_->lock);
                if (!c_->rx_ready_locked()) {
                    c_->rx_waker = current_waker(h);
                    mode_ = mode::waiting;
                    return true;
                }
            }
            if (eddy::detail::coop::try_consume()) {
                count_ = drain();
                done_ = true;
                return false;
            }
            mode_ = mode::yielded;
            eddy::detail::coop::yield_current(h);
            return true;
        }

        std::size_t await_resume() {
            mode_ = mode::idle;
            if (limit_ != 0 && !done_) {
                done_ = true;
                count_ = drain();
            }
            return count_;
        }

    private:
        /// Moves up to limit_ messages into buf_. Called when ready; only this receiver pops,
        /// so the queue cannot shrink between the two critical sections.
        std::size_t drain() {
            if (!c_->rx_local.empty()) {
                const std::size_t k = std::min(limit_, c_->rx_local.size());
                buf_->reserve(buf_->size() + k); // may throw: nothing taken yet
                for (std::size_t i = 0; i < k; ++i)
                    buf_->push_back(c_->rx_local.pop_front());
                c_->release_unlocked(k);
                return k;
            }
            std::size_t n;
            {
                std::lock_guard g(c_->lock);
                n = std::min(limit_, c_->queue.size());
            }
            if (n == 0)
                return 0;
            buf_->reserve(buf_->size() + n); // may throw: nothing taken yet
            eddy::detail::wake_list wakes;
            std::lock_guard g(c_->lock);
            for (std::size_t i = 0; i < n; ++i) {
                buf_->push_back(c_->queue.pop_front());
                if (c_->bounded) {
                    waker sw;
                    waker rx_unused;
                    c_->release_slot_locked(sw, rx_unused);
                    wakes.push(std::move(sw));
                }
            }
            return n;
        }

        chan* c_;
        std::vector<T>* buf_;
        std::size_t limit_;
        std::size_t count_ = 0;
        mode mode_ = mode::idle;
        bool done_ = false;
    };

    /// See `recv_operation`.
    recv_operation recv() { return recv_operation(detail::checked(h_.get(), "recv")); }

    /// See `recv_many_operation`.
    recv_many_operation recv_many(std::vector<T>& buf, std::size_t limit) {
        return recv_many_operation(detail::checked(h_.get(), "recv_many"), buf, limit);
    }

    /// A message without waiting: `errc::empty` when none is buffered but the channel is open,
    /// `errc::closed` when closed and drained.
    result<T> try_recv() {
        chan* c = detail::checked(h_.get(), "try_recv");
        std::optional<T> out;
        if (c->pop_local(out))
            return std::move(*out);
        waker sw;
        {
            std::lock_guard g(c->lock);
            if (c->queue.empty())
                return c->terminal_locked() ? errc::closed : errc::empty;
            c->pop_locked(out, sw);
        }
        sw.wake();
        return std::move(*out);
    }

    /// Like `recv`, for a plain thread outside the runtime: parks the thread while the channel
    /// is empty. Throws `std::logic_error` on a thread that runs a runtime's tasks.
    std::optional<T> blocking_recv() {
        chan* c = detail::checked(h_.get(), "blocking_recv");
        eddy::detail::check_blocking_allowed("eddy::mpsc::receiver::blocking_recv");
        eddy::detail::blocking_waiter bw;
        for (;;) {
            std::optional<T> out;
            if (c->pop_local(out))
                return out;
            waker sw;
            waker stale;
            bool ready = false;
            {
                std::lock_guard g(c->lock);
                if (c->rx_ready_locked()) {
                    ready = true;
                    stale = std::move(c->rx_waker);
                    if (!c->queue.empty())
                        c->pop_locked(out, sw);
                } else {
                    c->rx_waker = bw.make();
                }
            }
            if (ready) {
                sw.wake();
                return out;
            }
            bw.park();
        }
    }

    /// Closes the channel for the senders (they fail with `errc::closed` from now on, suspended
    /// ones included) while keeping the buffered messages receivable. Reserved permits may still
    /// send. Idempotent.
    void close() {
        chan* c = detail::checked(h_.get(), "close");
        eddy::detail::wake_list wakes;
        std::lock_guard g(c->lock);
        c->close_rx_locked(wakes);
    }

    /// Messages buffered right now (a snapshot).
    [[nodiscard]] std::size_t size() const {
        chan* c = detail::checked(h_.get(), "size");
        std::lock_guard g(c->lock);
        return c->rx_local.size() + c->queue.size();
    }

    [[nodiscard]] bool valid() const noexcept { return h_.get() != nullptr; }

private:
    template <class U>
    friend std::pair<sender<U>, receiver<U>> channel(std::size_t);
    template <class U>
    friend std::pair<unbounded_sender<U>, receiver<U>> unbounded_channel();
    explicit receiver(chan* c) noexcept : h_(c) {}

    eddy::detail::channel::handle<chan, detail::receiver_ops<T>> h_;
};

/// A bounded channel of `capacity` (>= 1) slots. Throws `std::invalid_argument` for 0.
template <class T>
std::pair<sender<T>, receiver<T>> channel(std::size_t capacity) {
    if (capacity == 0)
        throw std::invalid_argument("eddy::mpsc::channel: capacity must be at least 1");
    auto* c = new detail::mpsc_chan<T>(capacity);
    return {sender<T>(c), receiver<T>(c)};
}

/// An unbounded channel: sends never wait; the buffer grows as needed.
template <class T>
std::pair<unbounded_sender<T>, receiver<T>> unbounded_channel() {
    auto* c = new detail::mpsc_chan<T>(0);
    return {unbounded_sender<T>(c), receiver<T>(c)};
}

/// The receiver of an unbounded channel is the same type as a bounded one's.
template <class T>
using unbounded_receiver = receiver<T>;

} // namespace eddy::mpsc
