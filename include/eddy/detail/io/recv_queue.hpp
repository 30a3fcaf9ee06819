#pragma once
//! Multishot receive on io_uring for stream sockets: one submitted operation receives what the
//! peer sends, into the driver's provided buffers, until it ends; reads take the bytes from here.
//!
//! - Armed by the first read that finds nothing queued, on that task's ring, and re-armed the
//!   same way after the kernel ended it. A request-response exchange then costs no submission
//!   per received message: the kernel posts a completion whenever data arrives.
//! - A completion's bytes go straight into the buffer of a read that waits (the usual case);
//!   what no read waits for is copied into the queue. The provided buffer goes back to the ring
//!   at once either way, so a slow reader holds no kernel buffer.
//! - Backpressure: once more than `max_staged` bytes wait unread, the operation is cancelled; a
//!   read that empties the queue re-arms it. Meanwhile the bytes wait in the socket's receive
//!   buffer and TCP's flow control holds the peer back, as without the queue.
//! - The operation ends at end of stream (from then on every read returns 0), on an error
//!   (returned once, after the bytes received before it; the next read re-arms), or when the
//!   ring ran out of buffers (ENOBUFS: re-armed at once if someone waits, else by the next read).
//! - Cancel-safe: a read destroyed after its bytes arrived puts them back in front of the queue,
//!   so nothing is lost (a cancelled one-shot receive may lose what it received). Destroying the
//!   queue cancels the operation and waits for its final completion (invariant 1); bytes still
//!   queued go with the socket.
//!
//! Locks: the queue's lock is taken under the driver's completion lock (in the CQE handler), and
//! the driver's submission lock under the queue's lock (arming, pausing): no cycle.

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/io/uring_driver.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/task/wake_target.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace eddy::detail {

class recv_queue : private uring_completion {
public:
    /// Unread bytes beyond which the receive pauses.
    static constexpr std::size_t max_staged = 256 * 1024;

    recv_queue(uring_driver& d, int fd) noexcept : driver_(d), fd_(fd) { on_cqe = &handle_cqe; }
    recv_queue(const recv_queue&) = delete;
    recv_queue& operator=(const recv_queue&) = delete;

    ~recv_queue() {
        {
            std::lock_guard lock(lock_);
            closing_ = true; // the handler re-arms no more
        }
        driver_.cancel(*this); // waits for the final completion if the operation is armed
        // The handler may still be inside the lock it took for the final CQE.
        std::lock_guard lock(lock_);
    }

    /// Without waiting: bytes copied into `buf` (left queued when `peek`), 0 at end of stream,
    /// an error; nullopt when nothing came yet. `arm`: start receiving if it is not running.
    std::optional<result<std::size_t>> try_take(std::byte* buf, std::size_t len, bool peek,
                                                bool arm) {
        std::optional<result<std::size_t>> r;
        bool submit = false;
        {
            std::lock_guard lock(lock_);
            r = take_locked(buf, len, peek);
            submit = !r && arm && arm_locked();
        }
        if (submit)
            submit_receive();
        return r;
    }

    /// Bytes received and not read yet.
    [[nodiscard]] std::size_t staged_bytes() const noexcept {
        std::lock_guard lock(lock_);
        return staged_size();
    }

    /// Whether the operation is in flight (then the socket must not be read directly: the bytes
    /// would overtake those the kernel already received for the queue).
    [[nodiscard]] bool armed() const noexcept {
        std::lock_guard lock(lock_);
        return armed_;
    }

    /// A read: `read(2)`'s result, into `buf`. Needs no coroutine frame of its own. Movable until
    /// it is first awaited; `buf` must outlive it.
    class reader : public list_node<reader> {
    public:
        reader() noexcept = default;
        reader(recv_queue& q, std::byte* buf, std::size_t len) noexcept
            : q_(&q), buf_(buf), len_(len) {}
        reader(reader&& other) noexcept : q_(other.q_), buf_(other.buf_), len_(other.len_) {
            EDDY_ASSERT(other.mode_ == wait_mode::idle && !other.filled_);
        }
        reader& operator=(reader&&) = delete;
        ~reader() {
            if (q_ == nullptr || mode_ == wait_mode::idle)
                return;
            wake_target* w = nullptr;
            {
                std::lock_guard lock(q_->lock_);
                if (linked()) {
                    q_->readers_.remove(this);
                    w = std::exchange(waker_, nullptr);
                } else if (filled_ && result_ && *result_ && **result_ > 0) {
                    q_->put_back(buf_, **result_); // received, never returned: not lost
                }
            }
            eddy::waker(w).reset();
        }

        [[nodiscard]] bool active() const noexcept { return q_ != nullptr; }

        bool await_ready() {
            if (len_ == 0) {
                result_ = std::size_t{0};
                return true;
            }
            if (!coop::has_remaining())
                return false;
            std::optional<result<std::size_t>> r = q_->try_take(buf_, len_, false, true);
            if (!r)
                return false;
            (void)coop::try_consume();
            result_ = *r;
            return true;
        }

        bool await_suspend(std::coroutine_handle<> h) {
            eddy::waker w = current_waker(h);
            recv_queue& q = *q_;
            bool submit = false;
            bool ready = false;
            {
                std::lock_guard lock(q.lock_);
                if (std::optional<result<std::size_t>> r = q.take_locked(buf_, len_, false)) {
                    result_ = *r;
                    filled_ = ready = true;
                } else {
                    submit = q.arm_locked();
                    waker_ = w.release();
                    q.readers_.push_back(this);
                }
                mode_ = wait_mode::waiting;
            }
            // Linked, this reader belongs to the handler now: only locals from here on.
            if (submit)
                q.submit_receive(); // queued: nothing completes before this thread flushes
            return ready ? complete_or_yield(h) : true;
        }

        result<std::size_t> await_resume() noexcept {
            filled_ = false; // taken: nothing to put back
            return *result_;
        }

    private:
        friend class recv_queue;

        /// Under the queue's lock: the handler hands it its result.
        void fill(result<std::size_t> r) noexcept {
            result_ = r;
            filled_ = true;
        }

        recv_queue* q_ = nullptr;
        std::byte* buf_ = nullptr;
        std::size_t len_ = 0;
        std::optional<result<std::size_t>> result_;
        wake_target* waker_ = nullptr; ///< guarded by the queue's lock while linked
        wait_mode mode_ = wait_mode::idle;
        bool filled_ = false; ///< holds a result the task has not taken yet
    };

    /// Waits until something can be taken (bytes, end of stream or an error) without taking
    /// it; it may be gone again by then (another reader). Arms the receive. Cancel-safe.
    class ready_awaiter : public list_node<ready_awaiter> {
    public:
        explicit ready_awaiter(recv_queue& q) noexcept : q_(q) {}
        ready_awaiter(const ready_awaiter&) = delete;
        ready_awaiter& operator=(const ready_awaiter&) = delete;
        ~ready_awaiter() {
            if (!suspended_)
                return;
            wake_target* w = nullptr;
            {
                std::lock_guard lock(q_.lock_);
                if (linked()) {
                    q_.watchers_.remove(this);
                    w = std::exchange(waker_, nullptr);
                }
            }
            eddy::waker(w).reset();
        }

        [[nodiscard]] bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            eddy::waker w = current_waker(h);
            bool submit = false;
            {
                std::lock_guard lock(q_.lock_);
                if (q_.has_something_locked())
                    return false;
                submit = q_.arm_locked();
                waker_ = w.release();
                q_.watchers_.push_back(this);
                suspended_ = true;
            }
            if (submit)
                q_.submit_receive();
            return true;
        }

        void await_resume() const noexcept {}

    private:
        friend class recv_queue;
        recv_queue& q_;
        wake_target* waker_ = nullptr; ///< guarded by the queue's lock while linked
        bool suspended_ = false;
    };

    [[nodiscard]] ready_awaiter ready() noexcept { return ready_awaiter(*this); }

private:
    [[nodiscard]] std::size_t staged_size() const noexcept { return staged_.size() - head_; }

    [[nodiscard]] bool has_something_locked() const noexcept {
        return staged_size() > 0 || eof_ || error_ != 0;
    }

    std::optional<result<std::size_t>> take_locked(std::byte* buf, std::size_t len, bool peek) {
        if (const std::size_t n = std::min(len, staged_size()); n > 0) {
            std::memcpy(buf, staged_.data() + head_, n);
            if (!peek)
                consume(n);
            return n;
        }
        if (error_ != 0) {
            const int e = peek ? error_ : std::exchange(error_, 0);
            return std::error_code(e, std::system_category());
        }
        if (eof_ || len == 0)
            return std::size_t{0};
        return std::nullopt;
    }

    void consume(std::size_t n) noexcept {
        head_ += n;
        if (head_ == staged_.size()) {
            head_ = 0;
            staged_.clear();
            if (staged_.capacity() > 64 * 1024)
                staged_.shrink_to_fit(); // a burst's memory goes back
        }
    }

    /// Bytes a cancelled read had received go back in front of the queue.
    void put_back(const std::byte* data, std::size_t n) {
        if (head_ >= n) {
            head_ -= n;
            std::memcpy(staged_.data() + head_, data, n);
        } else {
            staged_.insert(staged_.begin() + static_cast<std::ptrdiff_t>(head_), data, data + n);
        }
    }

    /// Marks the receive armed if it is not running; true when the caller must then
    /// `submit_receive()`, after releasing the lock (submitting may reap, which takes it).
    bool arm_locked() noexcept {
        if (armed_ || closing_ || eof_)
            return false;
        armed_ = true;
        stopping_ = false;
        return true;
    }

    /// Queues the receive on the calling thread's ring.
    void submit_receive() noexcept {
        driver_.submit(
            *this, [fd = fd_](io_uring_sqe* sqe) { uring_driver::prep_multishot_recv(sqe, fd); });
    }

    /// Hands `n` received bytes to the waiting readers, in order, and queues the rest.
    void deliver(const std::byte* data, std::size_t n, std::vector<wake_target*>& wakes) {
        while (n > 0 && staged_size() == 0 && !readers_.empty()) {
            reader* r = readers_.pop_front();
            const std::size_t k = std::min(n, r->len_);
            std::memcpy(r->buf_, data, k);
            r->fill(k);
            wakes.push_back(std::exchange(r->waker_, nullptr));
            data += k;
            n -= k;
        }
        if (n > 0)
            staged_.insert(staged_.end(), data, data + n);
    }

    /// End of stream or an error: every waiting reader gets it.
    void fail_readers(std::vector<wake_target*>& wakes) noexcept {
        const bool any = !readers_.empty();
        while (reader* r = readers_.pop_front()) {
            if (eof_ && error_ == 0)
                r->fill(std::size_t{0});
            else
                r->fill(std::error_code(error_, std::system_category()));
            wakes.push_back(std::exchange(r->waker_, nullptr));
        }
        if (any)
            error_ = 0; // returned
    }

    static void handle_cqe(uring_completion& base, const io_uring_cqe& cqe,
                           std::vector<wake_target*>& wakes) noexcept {
        auto& q = static_cast<recv_queue&>(base);
        const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        std::lock_guard lock(q.lock_);
        uring_ring& ring = *q.ring; // where this operation was submitted
        if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
            const unsigned id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
            if (cqe.res > 0)
                q.deliver(ring.buffers.buffer(id), static_cast<std::size_t>(cqe.res), wakes);
            ring.buffers.give_back(id); // under the ring's cq_lock, which serializes them
        } else if (cqe.res == 0) {
            q.eof_ = true;
        } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
            q.error_ = -cqe.res;
        }
        if (more) {
            if (q.staged_size() > max_staged && !q.stopping_) {
                q.stopping_ = true;
                q.driver_.cancel_async(q);
            }
        } else {
            q.armed_ = false;
            const bool waited_on = !q.readers_.empty() || !q.watchers_.empty();
            if (q.staged_size() == 0 && !q.eof_ && q.error_ == 0 && !q.closing_ && waited_on) {
                // Out of buffers (or the kernel ended it for its own reasons) while a read
                // waits: the next completion must come without another read arming it.
                q.armed_ = q.driver_.submit_at_once(ring, q, [fd = q.fd_](io_uring_sqe* sqe) {
                    uring_driver::prep_multishot_recv(sqe, fd);
                });
                if (q.armed_)
                    q.driver_.count_rearm();
                else
                    q.error_ = ENOBUFS; // the kernel took no entry: fail the reads, not hang
            }
            if (!q.armed_) {
                // ORDERING: release publishes the queue's state to the destructor's acquire in
                // uring_driver::cancel; it still takes the lock before touching anything.
                q.state.store(uring_completion::done, memory_order_release);
            }
            if (q.staged_size() == 0 && (q.eof_ || q.error_ != 0))
                q.fail_readers(wakes);
        }
        if (q.has_something_locked() || !more) {
            while (ready_awaiter* a = q.watchers_.pop_front())
                wakes.push_back(std::exchange(a->waker_, nullptr));
        }
    }

    uring_driver& driver_;
    const int fd_;
    mutable spin_lock lock_;
    std::vector<std::byte> staged_; ///< received, unread: [head_, size)
    std::size_t head_ = 0;
    int error_ = 0;         ///< to return once the staged bytes are read
    bool eof_ = false;      ///< the peer closed: reads return 0 once the staged bytes are read
    bool armed_ = false;    ///< the operation is in flight
    bool stopping_ = false; ///< cancelled for backpressure
    bool closing_ = false;
    intrusive_list<reader> readers_;
    intrusive_list<ready_awaiter> watchers_;
};

} // namespace eddy::detail
