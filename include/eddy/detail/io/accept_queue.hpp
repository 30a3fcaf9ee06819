#pragma once
//! Multishot accept on io_uring: one submitted operation accepts every incoming connection of a
//! listener until it is cancelled, and the connections wait in a queue for `accept()`.
//!
//! - The operation is armed by the first `accept()` that finds the queue empty, and re-armed
//!   whenever the kernel ends it (an error such as EMFILE ends a multishot: that error is
//!   returned by one `accept()`, and the next one re-arms).
//! - Backpressure: once `max_queued` connections wait unclaimed, the operation is cancelled;
//!   it is re-armed when `accept()` has drained the queue. Beyond that, connections wait in the
//!   kernel's backlog as usual.
//! - `accept()` is cancel-safe: a connection is taken from the queue only by an accept that
//!   returns it. Destroying the queue cancels the operation, waits for its final completion
//!   (invariant 1) and closes the connections nobody took.
//! - A kernel without multishot accept (before 5.19) fails the first one with EINVAL; the queue
//!   then reports `unsupported()` and the listener uses one-shot accepts.
//!
//! Locks: the queue's spin lock may be taken under the driver's completion lock (in the CQE
//! handler) and the driver's submission lock under the queue's lock (arming): no cycle.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/io/uring_driver.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/wake_target.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include <sys/socket.h>
#include <unistd.h>

namespace eddy::detail {

class accept_queue : private uring_completion {
public:
    static constexpr std::size_t max_queued = 128;

    accept_queue(uring_driver& d, int listen_fd) noexcept : driver_(d), fd_(listen_fd) {
        on_cqe = &handle_cqe;
    }
    accept_queue(const accept_queue&) = delete;
    accept_queue& operator=(const accept_queue&) = delete;

    ~accept_queue() {
        driver_.cancel(*this); // waits for the final completion if the operation is armed
        // The handler may still be inside the lock it took for the final CQE.
        std::lock_guard lock(lock_);
        for (const int fd : fds_)
            ::close(fd);
    }

    /// A connection's fd, an error (-errno), or nullopt: nothing yet (the operation is armed;
    /// wait with `ready()` and call again).
    std::optional<int> try_take() {
        std::unique_lock lock(lock_);
        if (!fds_.empty() || error_ != 0) {
            int r = 0;
            if (!fds_.empty()) {
                r = fds_.front();
                fds_.pop_front();
            } else {
                r = -std::exchange(error_, 0);
            }
            wake_target* next = (!fds_.empty() || error_ != 0) ? take_waiter() : nullptr;
            lock.unlock();
            eddy::waker(next).wake();
            return r;
        }
        if (!armed_ && !unsupported_) {
            armed_ = true;
            stopping_ = false;
            driver_.submit(*this, [fd = fd_](io_uring_sqe* sqe) {
                io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
            });
        }
        return std::nullopt;
    }

    /// True once the kernel refused multishot accept.
    [[nodiscard]] bool unsupported() const noexcept {
        std::lock_guard lock(lock_);
        return unsupported_ && fds_.empty() && error_ == 0;
    }

    /// Suspends until the queue has something (a connection, an error, or "unsupported").
    /// Several tasks may accept on one listener at once: every waiter is woken, and those that
    /// find the queue empty again wait again. Cancel-safe: the destructor withdraws the waiter.
    class awaiter : public list_node<awaiter> {
    public:
        explicit awaiter(accept_queue& q) noexcept : q_(q) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (!suspended_)
                return;
            wake_target* w = nullptr;
            {
                std::lock_guard lock(q_.lock_);
                if (linked()) {
                    q_.waiters_.remove(this);
                    w = std::exchange(waker_, nullptr);
                }
            }
            eddy::waker(w).reset();
        }

        [[nodiscard]] bool await_ready() const noexcept { return false; }

        bool await_suspend(std::coroutine_handle<> h) {
            eddy::waker w = current_waker(h);
            std::lock_guard lock(q_.lock_);
            if (!q_.fds_.empty() || q_.error_ != 0 || q_.unsupported_)
                return false;
            waker_ = w.release();
            q_.waiters_.push_back(this);
            suspended_ = true;
            return true;
        }

        void await_resume() const noexcept {}

    private:
        friend class accept_queue;
        accept_queue& q_;
        wake_target* waker_ = nullptr; ///< guarded by the queue's lock while linked
        bool suspended_ = false;
    };

    [[nodiscard]] awaiter ready() noexcept { return awaiter(*this); }

private:
    static wake_target* handle_cqe(uring_completion& base, const io_uring_cqe& cqe) noexcept {
        auto& q = static_cast<accept_queue&>(base);
        const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        std::unique_lock lock(q.lock_);
        if (cqe.res >= 0) {
            q.fds_.push_back(cqe.res);
            q.accepted_any_ = true;
        } else if (cqe.res == -EINVAL && !more && !q.accepted_any_) {
            q.unsupported_ = true;
        } else if (cqe.res != -ECANCELED) {
            q.error_ = -cqe.res;
        }
        // One waiter per CQE; a waiter that takes a connection and leaves more behind wakes the
        // next (try_take), so several tasks accepting on one listener all make progress.
        wake_target* w = q.take_waiter();
        if (more && q.fds_.size() >= max_queued && !q.stopping_) {
            q.stopping_ = true;
            q.driver_.cancel_async(q);
        }
        if (!more) {
            q.armed_ = false;
            // ORDERING: release publishes the queue's state to the destructor's acquire in
            // uring_driver::cancel; it still takes the lock before touching anything.
            q.state.store(uring_completion::done, memory_order_release);
        }
        return w;
    }

    uring_driver& driver_;
    const int fd_;
    mutable spin_lock lock_;
    std::deque<int> fds_;
    int error_ = 0;
    bool armed_ = false;
    bool stopping_ = false;
    bool unsupported_ = false;
    bool accepted_any_ = false;
    intrusive_list<awaiter> waiters_;

    /// Unlinks the longest waiter; its waker (under lock_).
    wake_target* take_waiter() noexcept {
        awaiter* a = waiters_.pop_front();
        return a != nullptr ? std::exchange(a->waker_, nullptr) : nullptr;
    }
};

} // namespace eddy::detail
