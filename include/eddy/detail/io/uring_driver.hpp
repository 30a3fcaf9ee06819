#pragma once
//! The io_uring backend: completion-based, one ring per runtime shared by its threads.
//!
//! Submitting: an operation prepares its SQE under `sq_lock_` (`submit`), with a
//! `uring_completion` inside the awaiter as user data. The SQEs are handed to the kernel in one
//! system call by `flush()`, which workers call after every task they poll, and by `wait()`
//! before it sleeps: a batch per scheduler turn.
//!
//! Completing: whoever turns the driver (`wait`, `poll`, under `cq_lock_`) reaps the CQEs,
//! stores each result in its `uring_completion` and marks it DONE, then wakes the tasks after the
//! lock is released. After marking DONE it never touches the completion again.
//!
//! Cancellation (invariants 1 and 2): the awaiter, and so the memory the kernel reads or writes
//! (the buffer in the task's frame, the address, the iovecs), lives until the operation's CQE
//! has been reaped. An awaiter destroyed while its operation is in flight (an aborted task, a
//! lost `select`, an expired `timeout`) marks it CANCELLING, submits IORING_OP_ASYNC_CANCEL for
//! it, and waits for DONE, reaping completions itself when no other thread is inside the driver.
//! A CANCELLING completion drops its waker instead of waking it. Socket operations cancel at
//! once; a file read already running in an io-wq worker is waited for. An operation still
//! queued (not yet submitted) is withdrawn instead: it never reaches the kernel.
//!
//! Waking the driver from another thread writes to an eventfd; a READ of that eventfd is always
//! in flight (user data `wake_tag`) and is re-armed after it completes.
//!
//! Setup: the ring is shared by several threads and an awaiter may be destroyed on any of them,
//! so IORING_SETUP_SINGLE_ISSUER / DEFER_TASKRUN / COOP_TASKRUN (which tie completions to the
//! submitting thread) are not used. SUBMIT_ALL and CLAMP are used when the kernel accepts them.
//! The driver needs IORING_FEAT_EXT_ARG (a wait timeout without an SQE, Linux 5.11) and the
//! operations eddy issues; without them construction throws and `automatic` falls back to epoll.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/wake_target.hpp>

#include <liburing.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

namespace eddy::detail {

/// Test hook: makes the next io_uring setups fail with ENOSYS, as on a kernel without io_uring.
inline atomic<bool> simulate_io_uring_unavailable{false};

/// One operation's completion record, inside the awaiter that waits for it.
struct uring_completion {
    static constexpr std::uint32_t idle = 0;
    static constexpr std::uint32_t pending = 1;
    static constexpr std::uint32_t cancelling = 2;
    static constexpr std::uint32_t done = 3;

    atomic<std::uint32_t> state{idle};
    std::int32_t res = 0;    ///< the CQE's result (a count or -errno); valid once DONE
    std::uint32_t flags = 0; ///< the CQE's flags; valid once DONE
    wake_target* waker = nullptr;

    /// Multishot operations: handles every CQE, under the driver's lock, instead of the one-shot
    /// protocol above, and returns a waker to wake once the lock is released (or null). On the
    /// final CQE (no IORING_CQE_F_MORE) it stores DONE (release) and then no longer touches the
    /// completion.
    using cqe_handler = wake_target* (*)(uring_completion&, const io_uring_cqe&) noexcept;
    cqe_handler on_cqe = nullptr;
};

class uring_driver final : public io_driver {
public:
    static constexpr unsigned default_entries = 4096;

    explicit uring_driver(unsigned entries = default_entries) : io_driver(io_backend::io_uring) {
        if (simulate_io_uring_unavailable.load(memory_order_relaxed))
            throw std::system_error(ENOSYS, std::system_category(), "eddy: io_uring_setup");
        setup(entries);
        wakefd_ = ::eventfd(0, EFD_CLOEXEC);
        if (wakefd_ < 0) {
            const int e = errno;
            io_uring_queue_exit(&ring_);
            throw std::system_error(e, std::system_category(), "eddy: eventfd");
        }
        std::lock_guard lock(sq_lock_);
        arm_wake_locked();
        submit_locked();
    }

    ~uring_driver() override {
        // Every operation has completed (their awaiters wait for that); exiting the ring cancels
        // the wake read.
        io_uring_queue_exit(&ring_);
        ::close(wakefd_);
    }

    /// The setup flags the kernel accepted.
    [[nodiscard]] unsigned setup_flags() const noexcept { return setup_flags_; }

    /// Queues the operation `prep(sqe)` prepares, completing into `c` (which must stay alive
    /// until DONE). Submitted at the next `flush` or `wait`.
    template <class Prep>
    void submit(uring_completion& c, Prep&& prep) noexcept {
        for (;;) {
            {
                std::lock_guard lock(sq_lock_);
                io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
                if (sqe == nullptr) {
                    submit_locked(); // full: hand the batch over and take a fresh entry
                    sqe = io_uring_get_sqe(&ring_);
                }
                if (sqe != nullptr) {
                    prep(sqe);
                    io_uring_sqe_set_data(sqe, &c);
                    // ORDERING: release pairs with complete()'s acquire: the kernel orders the
                    // CQE after this submission, but ThreadSanitizer cannot see through it.
                    c.state.store(uring_completion::pending, memory_order_release);
                    unsubmitted_.store(true, memory_order_relaxed);
                    return;
                }
            }
            // The kernel refused the batch (completion queue overflowing): reap, then retry.
            poll();
            std::this_thread::yield();
        }
    }

    void flush_queued() noexcept override {
        submit_now();
        poll(); // completions that were ready at once (data already in the socket buffer)
    }

    std::size_t wait(std::optional<std::chrono::nanoseconds> timeout) noexcept override {
        submit_now();
        std::unique_lock lock(cq_lock_);
        // A wake that came before we held the lock may have been reaped by another thread's
        // poll(): the flag keeps it, so this wait does not sleep through it.
        const bool woken = wake_requested_.exchange(false, memory_order_acq_rel);
        if (!woken && io_uring_cq_ready(&ring_) == 0) {
            __kernel_timespec ts{};
            io_uring_getevents_arg arg{};
            if (timeout) {
                const auto ns = std::max(timeout->count(), std::int64_t{0});
                ts.tv_sec = ns / 1'000'000'000;
                ts.tv_nsec = ns % 1'000'000'000;
                arg.ts = reinterpret_cast<std::uint64_t>(&ts);
            }
            // Returns on a completion, the timeout (ETIME) or a signal (EINTR): all fine.
            io_uring_enter2(ring_.ring_fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                            reinterpret_cast<sigset_t*>(&arg), sizeof arg);
        }
        return reap(lock);
    }

    std::size_t poll() noexcept override {
        if (!cq_has_entries() && !cq_needs_flush())
            return 0;
        std::unique_lock lock(cq_lock_, std::try_to_lock);
        if (!lock.owns_lock())
            return 0;
        return reap(lock);
    }

    void wake() noexcept override {
        count_wake();
        // ORDERING: release, before the write, pairs with wait()'s exchange.
        wake_requested_.store(true, memory_order_release);
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wakefd_, &one, sizeof one);
    }

    /// Asks the kernel to cancel the operation of `c` without waiting for it (any thread, also
    /// from a CQE handler).
    void cancel_async(uring_completion& c) noexcept {
        std::lock_guard lock(sq_lock_);
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) {
            submit_locked();
            sqe = io_uring_get_sqe(&ring_);
        }
        if (sqe != nullptr) {
            io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&c), 0);
            io_uring_sqe_set_data64(sqe, cancel_tag);
            unsubmitted_.store(true, memory_order_relaxed);
        }
    }

    /// From the destructor of an awaiter whose operation may be in flight: cancels it and
    /// returns once its completion was reaped (see the module comment).
    void cancel(uring_completion& c) noexcept {
        std::uint32_t expected = uring_completion::pending;
        if (!c.state.compare_exchange_strong(expected, uring_completion::cancelling,
                                             memory_order_acq_rel, memory_order_acquire)) {
            EDDY_ASSERT(expected == uring_completion::done || expected == uring_completion::idle);
            return;
        }
        {
            std::lock_guard lock(sq_lock_);
            if (withdraw_unsubmitted_locked(c)) {
                // The kernel never saw it: nothing ran, nothing will complete. (Submitting it
                // with its cancel would let a receive take data and then drop it.)
                c.res = -ECANCELED;
                wake_target* w = std::exchange(c.waker, nullptr);
                c.state.store(uring_completion::done, memory_order_release);
                waker(w).reset();
                return;
            }
            io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
            if (sqe == nullptr) {
                submit_locked();
                sqe = io_uring_get_sqe(&ring_);
            }
            if (sqe != nullptr) {
                io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&c), 0);
                io_uring_sqe_set_data64(sqe, cancel_tag);
            }
            // (No entry even after submitting: the operation completes on its own, e.g. when
            // the socket closes; we still wait for it below.)
            submit_locked();
        }
        // ORDERING: acquire pairs with the release in complete(): the kernel and the driver are
        // done with the awaiter once DONE is seen.
        while (c.state.load(memory_order_acquire) != uring_completion::done) {
            std::unique_lock lock(cq_lock_, std::try_to_lock);
            if (lock.owns_lock()) {
                if (io_uring_cq_ready(&ring_) == 0) {
                    __kernel_timespec ts{0, 1'000'000};
                    io_uring_getevents_arg arg{};
                    arg.ts = reinterpret_cast<std::uint64_t>(&ts);
                    io_uring_enter2(ring_.ring_fd, 0, 1,
                                    IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                                    reinterpret_cast<sigset_t*>(&arg), sizeof arg);
                }
                reap(lock);
            } else {
                // Another thread is in the driver: it reaps our completion and marks it.
                std::this_thread::yield();
            }
        }
    }

private:
    static constexpr std::uint64_t cancel_tag = 0;
    static constexpr std::uint64_t wake_tag = 1;

    void setup(unsigned entries) {
        const unsigned wanted[] = {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP, IORING_SETUP_CLAMP,
                                   0};
        int rc = -EINVAL;
        for (const unsigned flags : wanted) {
            io_uring_params p{};
            p.flags = flags;
            rc = io_uring_queue_init_params(entries, &ring_, &p);
            if (rc == 0) {
                setup_flags_ = flags;
                features_ = p.features;
                break;
            }
            if (rc != -EINVAL)
                break;
        }
        if (rc < 0)
            throw std::system_error(-rc, std::system_category(), "eddy: io_uring_setup");
        std::string missing;
        if ((features_ & IORING_FEAT_EXT_ARG) == 0)
            missing = "IORING_FEAT_EXT_ARG";
        if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
            const std::pair<int, const char*> needed[] = {
                {IORING_OP_ACCEPT, "ACCEPT"},     {IORING_OP_CONNECT, "CONNECT"},
                {IORING_OP_RECV, "RECV"},         {IORING_OP_SEND, "SEND"},
                {IORING_OP_RECVMSG, "RECVMSG"},   {IORING_OP_SENDMSG, "SENDMSG"},
                {IORING_OP_READ, "READ"},         {IORING_OP_WRITE, "WRITE"},
                {IORING_OP_WRITEV, "WRITEV"},     {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
                {IORING_OP_POLL_ADD, "POLL_ADD"},
            };
            for (const auto& [op, name] : needed) {
                if (io_uring_opcode_supported(probe, op) == 0)
                    missing += std::string(missing.empty() ? "" : ", ") + "IORING_OP_" + name;
            }
            io_uring_free_probe(probe);
        } else {
            missing = "the opcode probe (Linux 5.6)";
        }
        if (!missing.empty()) {
            io_uring_queue_exit(&ring_);
            throw std::system_error(ENOSYS, std::system_category(),
                                    "eddy: io_uring lacks " + missing);
        }
    }

    /// Publishes the queued entries under sq_lock_ and hands them to the kernel outside it. The
    /// system call runs what can complete at once (a send's whole loopback path), so holding the
    /// lock across it made the other workers spin. Concurrent io_uring_enter calls are fine: the
    /// kernel serializes submission and submits at most what was published.
    void submit_now() noexcept {
        unsigned n = 0;
        {
            std::lock_guard lock(sq_lock_);
            n = publish_locked();
        }
        if (n == 0)
            return;
        const int r = io_uring_enter(ring_.ring_fd, n, 0, 0, nullptr);
        if (r > 0)
            count_submissions(static_cast<std::size_t>(r));
    }

    /// Makes the prepared entries visible to the kernel (what io_uring_submit does before its
    /// system call); returns how many are waiting for it. Caller holds sq_lock_.
    unsigned publish_locked() noexcept {
        unsubmitted_.store(false, memory_order_relaxed);
        io_uring_sq& sq = ring_.sq;
        const unsigned tail = sq.sqe_tail;
        if (sq.sqe_head != tail) {
            sq.sqe_head = tail;
            __atomic_store_n(sq.ktail, tail, __ATOMIC_RELEASE);
        }
        return tail - __atomic_load_n(sq.khead, __ATOMIC_ACQUIRE);
    }

    /// Caller holds sq_lock_ (rare paths: a full submission queue, a cancellation).
    void submit_locked() noexcept {
        unsubmitted_.store(false, memory_order_relaxed);
        const int n = io_uring_submit(&ring_);
        if (n > 0)
            count_submissions(static_cast<std::size_t>(n));
    }

    /// Turns the entry of `c`, if it is still queued and not yet handed to the kernel, into a
    /// no-op whose completion is ignored. Caller holds sq_lock_.
    bool withdraw_unsubmitted_locked(uring_completion& c) noexcept {
        const auto data = reinterpret_cast<std::uint64_t>(&c);
        // [sqe_head, sqe_tail): prepared entries the next io_uring_submit will hand over.
        for (unsigned i = ring_.sq.sqe_head; i != ring_.sq.sqe_tail; ++i) {
            io_uring_sqe* sqe = &ring_.sq.sqes[i & ring_.sq.ring_mask];
            if (sqe->user_data == data) {
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, cancel_tag);
                return true;
            }
        }
        return false;
    }

    /// Caller holds sq_lock_.
    void arm_wake_locked() noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) {
            submit_locked();
            sqe = io_uring_get_sqe(&ring_);
        }
        if (sqe != nullptr) {
            io_uring_prep_read(sqe, wakefd_, &wake_buffer_, sizeof wake_buffer_, 0);
            io_uring_sqe_set_data64(sqe, wake_tag);
            unsubmitted_.store(true, memory_order_relaxed);
        }
    }

    /// Unlocked hint (the reaper advances the head concurrently); reap re-checks under the lock.
    [[nodiscard]] bool cq_has_entries() const noexcept {
        return __atomic_load_n(ring_.cq.ktail, __ATOMIC_ACQUIRE) !=
               __atomic_load_n(ring_.cq.khead, __ATOMIC_RELAXED);
    }

    [[nodiscard]] bool cq_needs_flush() const noexcept {
        // ORDERING: a hint only; reap re-checks under the lock.
        return (__atomic_load_n(ring_.sq.kflags, __ATOMIC_RELAXED) & IORING_SQ_CQ_OVERFLOW) != 0;
    }

    /// Reaps every available completion; `lock` holds cq_lock_ and is released before waking.
    std::size_t reap(std::unique_lock<std::mutex>& lock) noexcept {
        // Reused allocations; waking or dropping a waker may re-enter (a task freed by the drop
        // cancels an operation), which then finds the thread's buffers empty.
        std::vector<wake_target*> wakes;
        std::vector<wake_target*> drops;
        wakes.swap(wake_buffer());
        drops.swap(drop_buffer());
        std::size_t total = 0;
        bool rearm = false;
        std::array<io_uring_cqe*, 64> cqes{};
        for (;;) {
            const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes.data(), cqes.size());
            if (n == 0)
                break;
            for (unsigned i = 0; i < n; ++i) {
                const std::uint64_t tag = cqes[i]->user_data;
                if (tag == cancel_tag)
                    continue;
                if (tag == wake_tag) {
                    rearm = true;
                    continue;
                }
                auto& c = *reinterpret_cast<uring_completion*>(tag);
                // ORDERING: acquire pairs with submit()'s release (ThreadSanitizer's view).
                (void)c.state.load(memory_order_acquire);
                if (c.on_cqe != nullptr) {
                    if (wake_target* w = c.on_cqe(c, *cqes[i]))
                        wakes.push_back(w);
                } else {
                    complete(c, *cqes[i], wakes, drops);
                }
                ++total;
            }
            io_uring_cq_advance(&ring_, n);
        }
        if (rearm) {
            // Submitted now, not at the next flush: a thread that already submitted in wait()
            // may be blocked on cq_lock_ behind us, and will sleep once it has it; only this
            // read can wake it, and nobody else may flush before the runtime shuts down.
            std::lock_guard sq(sq_lock_);
            arm_wake_locked();
            submit_locked();
        }
        lock.unlock();
        count_events(total);
        for (wake_target* w : wakes)
            waker(w).wake();
        for (wake_target* w : drops)
            waker(w).reset();
        wakes.clear();
        drops.clear();
        wakes.swap(wake_buffer());
        drops.swap(drop_buffer());
        return total;
    }

    static void complete(uring_completion& c, const io_uring_cqe& cqe,
                         std::vector<wake_target*>& wakes,
                         std::vector<wake_target*>& drops) noexcept {
        c.res = cqe.res;
        c.flags = cqe.flags;
        wake_target* w = std::exchange(c.waker, nullptr);
        // ORDERING: release publishes res/flags to the awaiter; after this store the driver no
        // longer touches `c` (a cancelling destructor may free it at once).
        const std::uint32_t prev = c.state.exchange(uring_completion::done, memory_order_acq_rel);
        (prev == uring_completion::pending ? wakes : drops).push_back(w);
    }

    static std::vector<wake_target*>& wake_buffer() noexcept {
        static thread_local std::vector<wake_target*> buffer;
        return buffer;
    }
    static std::vector<wake_target*>& drop_buffer() noexcept {
        static thread_local std::vector<wake_target*> buffer;
        return buffer;
    }

    io_uring ring_{};
    unsigned setup_flags_ = 0;
    unsigned features_ = 0;
    int wakefd_ = -1;
    std::uint64_t wake_buffer_ = 0;
    atomic<bool> wake_requested_{false}; ///< set by wake(), consumed by the next wait()
    spin_lock sq_lock_;
    std::mutex cq_lock_; ///< held by the thread reaping (possibly asleep in the kernel)
};

} // namespace eddy::detail
