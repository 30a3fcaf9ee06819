#pragma once
//! The io_uring backend: completion-based, one ring per worker.
//!
//! Rings: one per worker (`shards`), as the timer wheels are. The kernel serializes the
//! submissions to one ring (its `uring_lock`) and runs the operations that can complete at once
//! (a receive with data waiting, a read of a cached file, a send's whole loopback path) inside
//! them, so with one ring shared by two workers one of them spun on that lock while the other
//! did the I/O. A task submits to the ring of the worker it runs on (`context().worker_index`;
//! threads that are no worker use ring 0), and an operation remembers its ring, so it completes
//! and cancels there wherever its task moves.
//!
//! Submitting: an operation prepares its SQE under its ring's `sq_lock`, with a
//! `uring_completion` inside the awaiter as user data. Each worker hands its own ring's SQEs to
//! the kernel in one system call by `flush()`, which it calls once its run queue is empty (or
//! after `flush_batch::max_polls` tasks) and before it sleeps: a batch per scheduler turn. No
//! thread submits another's queued entries (the task work of a request runs on the thread that
//! submitted it, and would then contend on the ring's lock with the ring's worker); the rare paths
//! that queue an entry on another worker's ring (cancellations) submit it at once.
//!
//! Completing: whoever turns a ring (`poll` and `wait` try every ring, under that ring's
//! `cq_lock`) reaps its CQEs, stores each result in its `uring_completion` and marks it DONE,
//! then wakes the tasks after the lock is released. After marking DONE it never touches the
//! completion again.
//!
//! Sleeping: the thread that parks on the driver sleeps in ppoll(2) on an eventfd that every
//! ring signals when it posts a completion (`io_uring_register_eventfd`) and that `wake()`
//! writes; then it reaps every ring. It resets the eventfd before it looks at the rings, so a
//! completion posted after the look makes it readable, and it holds no ring's lock while it
//! sleeps, so the workers go on reaping. (Sleeping in io_uring_enter needs a READ of the eventfd
//! in flight on a ring, and re-arming it submitted what that ring's worker had queued.)
//!
//! Cancellation (invariants 1 and 2): the awaiter, and so the memory the kernel reads or writes
//! (the buffer in the task's frame, the address, the iovecs), lives until the operation's CQE
//! has been reaped. An awaiter destroyed while its operation is in flight (an aborted task, a
//! lost `select`, an expired `timeout`) marks it CANCELLING, submits IORING_OP_ASYNC_CANCEL for
//! it on its ring, and waits for DONE, reaping that ring itself when no other thread is doing so.
//! A CANCELLING completion drops its waker instead of waking it. Socket operations cancel at
//! once; a file read already running in an io-wq worker is waited for. An operation still
//! queued (not yet submitted) is withdrawn instead: it never reaches the kernel.
//!
//! Setup: a ring is used by several threads (a task moves between workers, an awaiter may be
//! destroyed anywhere), so IORING_SETUP_SINGLE_ISSUER / DEFER_TASKRUN (which let only the
//! submitting thread reap) are not used. COOP_TASKRUN + TASKRUN_FLAG are, when the kernel accepts
//! them (5.19): a completion that needs the submitting thread's context (a receive armed on
//! poll) no longer interrupts that thread with an inter-processor interrupt, very costly in a VM;
//! it runs when the thread next enters the kernel: at its next submission, when it polls the
//! driver (`poll` enters when the kernel flags pending work), or at once if it sleeps, since the
//! kernel wakes an interruptible sleeper. SUBMIT_ALL and CLAMP are used when accepted. The driver
//! needs IORING_FEAT_EXT_ARG (Linux 5.11) and the operations eddy issues; without them construction
//! throws and `automatic` falls back to epoll.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/wake_target.hpp>

#include <liburing.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace eddy::detail {

/// Test hook: makes the next io_uring setups fail with ENOSYS, as on a kernel without io_uring.
inline atomic<bool> simulate_io_uring_unavailable{false};

/// One ring of the driver: the kernel's rings, the lock that guards preparing entries, and the
/// lock held by the thread reaping completions.
struct alignas(64) uring_ring {
    io_uring ring{};
    spin_lock sq_lock;
    std::mutex cq_lock;
    atomic<bool> unsubmitted{false}; ///< entries prepared and not yet handed to the kernel
    bool initialized = false;
};

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
    uring_ring* ring = nullptr; ///< where it was submitted (set before PENDING is published)

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

    /// `shards` rings (one per worker; at least one) of `entries` entries each.
    explicit uring_driver(std::uint32_t shards = 1, unsigned entries = default_entries)
        : io_driver(io_backend::io_uring) {
        if (simulate_io_uring_unavailable.load(memory_order_relaxed))
            throw std::system_error(ENOSYS, std::system_category(), "eddy: io_uring_setup");
        const std::uint32_t n = std::max<std::uint32_t>(shards, 1);
        rings_.reserve(n);
        try {
            for (std::uint32_t i = 0; i < n; ++i) {
                rings_.push_back(std::make_unique<uring_ring>());
                if (i == 0)
                    setup_first(*rings_[0], entries);
                else
                    setup_more(*rings_[i], entries);
            }
            wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (wakefd_ < 0)
                throw std::system_error(errno, std::system_category(), "eddy: eventfd");
            for (const auto& r : rings_) {
                if (const int rc = io_uring_register_eventfd(&r->ring, wakefd_); rc < 0)
                    throw std::system_error(-rc, std::system_category(),
                                            "eddy: io_uring_register_eventfd");
            }
        } catch (...) {
            release_rings();
            throw;
        }
        // `flush` always reaches flush_queued, which looks at the calling thread's ring only.
        unsubmitted_.store(true, memory_order_relaxed);
    }

    ~uring_driver() override {
        // Every operation has completed (their awaiters wait for that); exiting ring 0 cancels
        // the wake read.
        release_rings();
    }

    /// The setup flags the kernel accepted.
    [[nodiscard]] unsigned setup_flags() const noexcept { return setup_flags_; }

    /// Whether sends and receives take IORING_RECVSEND_POLL_FIRST. It came in Linux 5.19, as
    /// did COOP_TASKRUN, which the kernel accepted when this is true.
    [[nodiscard]] bool has_poll_first() const noexcept {
        return (setup_flags_ & IORING_SETUP_COOP_TASKRUN) != 0;
    }

    /// How many rings the driver has.
    [[nodiscard]] std::size_t ring_count() const noexcept { return rings_.size(); }

    /// Queues the operation `prep(sqe)` prepares, completing into `c` (which must stay alive
    /// until DONE), on the calling thread's ring. Submitted at the next `flush` or `wait`.
    template <class Prep>
    void submit(uring_completion& c, Prep&& prep) noexcept {
        uring_ring& r = own_ring();
        for (;;) {
            {
                std::lock_guard lock(r.sq_lock);
                io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
                if (sqe == nullptr) {
                    submit_locked(r); // full: hand the batch over and take a fresh entry
                    sqe = io_uring_get_sqe(&r.ring);
                }
                if (sqe != nullptr) {
                    prep(sqe);
                    io_uring_sqe_set_data(sqe, &c);
                    c.ring = &r;
                    // ORDERING: release pairs with complete()'s acquire (the kernel orders the
                    // CQE after this submission, but ThreadSanitizer cannot see through it) and
                    // with cancel()'s, which reads `c.ring`.
                    c.state.store(uring_completion::pending, memory_order_release);
                    mark_unsubmitted(r);
                    return;
                }
            }
            // The kernel refused the batch (completion queue overflowing): reap, then retry.
            poll();
            std::this_thread::yield();
        }
    }

    void flush_queued() noexcept override {
        if (submit_own())
            poll(); // completions that were ready at once (data already in the socket buffer)
    }

    std::size_t wait(std::optional<std::chrono::nanoseconds> timeout) noexcept override {
        submit_own();
        // Reset the eventfd first: whatever completes or wakes from here on makes it readable.
        std::uint64_t count = 0;
        [[maybe_unused]] const ssize_t got = ::read(wakefd_, &count, sizeof count);
        // A wake whose write the reset consumed left the flag: do not sleep through it.
        const bool woken = wake_requested_.exchange(false, memory_order_acq_rel);
        if (!woken && !any_ring_has_entries()) {
            pollfd pfd{wakefd_, POLLIN, 0};
            timespec ts{};
            if (timeout) {
                const auto ns = std::max(timeout->count(), std::int64_t{0});
                ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
                ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
            }
            // Returns on a completion or a wake, the timeout, or a signal (EINTR): all fine.
            ::ppoll(&pfd, 1, timeout ? &ts : nullptr, nullptr);
        }
        return poll();
    }

    std::size_t poll() noexcept override {
        run_own_task_work();
        std::size_t n = 0;
        for (const auto& r : rings_)
            n += poll_ring(*r);
        return n;
    }

    void wake() noexcept override {
        count_wake();
        // ORDERING: release, before the write, pairs with wait()'s exchange.
        wake_requested_.store(true, memory_order_release);
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wakefd_, &one, sizeof one);
    }

    /// Asks the kernel to cancel the operation of `c` (submitted, not DONE) without waiting for
    /// it (any thread, also from a CQE handler).
    void cancel_async(uring_completion& c) noexcept {
        EDDY_ASSERT(c.ring != nullptr);
        uring_ring& r = *c.ring;
        std::lock_guard lock(r.sq_lock);
        io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
        if (sqe == nullptr) {
            submit_locked(r);
            sqe = io_uring_get_sqe(&r.ring);
        }
        if (sqe != nullptr) {
            io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&c), 0);
            io_uring_sqe_set_data64(sqe, cancel_tag);
        }
        // Now: the ring may be another worker's, which flushes only its own entries.
        submit_locked(r);
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
        uring_ring& r = *c.ring;
        {
            std::lock_guard lock(r.sq_lock);
            if (withdraw_unsubmitted_locked(r, c)) {
                // The kernel never saw it: nothing ran, nothing will complete. (Submitting it
                // with its cancel would let a receive take data and then drop it.)
                c.res = -ECANCELED;
                wake_target* w = std::exchange(c.waker, nullptr);
                c.state.store(uring_completion::done, memory_order_release);
                waker(w).reset();
                return;
            }
            io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
            if (sqe == nullptr) {
                submit_locked(r);
                sqe = io_uring_get_sqe(&r.ring);
            }
            if (sqe != nullptr) {
                io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&c), 0);
                io_uring_sqe_set_data64(sqe, cancel_tag);
            }
            // (No entry even after submitting: the operation completes on its own, e.g. when
            // the socket closes; we still wait for it below.)
            submit_locked(r);
        }
        // ORDERING: acquire pairs with the release in complete(): the kernel and the driver are
        // done with the awaiter once DONE is seen.
        while (c.state.load(memory_order_acquire) != uring_completion::done) {
            std::unique_lock lock(r.cq_lock, std::try_to_lock);
            if (lock.owns_lock()) {
                if (io_uring_cq_ready(&r.ring) == 0) {
                    __kernel_timespec ts{0, 1'000'000};
                    io_uring_getevents_arg arg{};
                    arg.ts = reinterpret_cast<std::uint64_t>(&ts);
                    io_uring_enter2(r.ring.ring_fd, 0, 1,
                                    IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                                    reinterpret_cast<sigset_t*>(&arg), sizeof arg);
                }
                reap(r, lock);
            } else {
                // Another thread is in this ring: it reaps our completion and marks it.
                std::this_thread::yield();
            }
        }
    }

private:
    static constexpr std::uint64_t cancel_tag = 0;

    /// Sets up ring 0: the flags the kernel accepts, then the features and opcodes eddy needs.
    void setup_first(uring_ring& r, unsigned entries) {
        const unsigned wanted[] = {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP |
                                       IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
                                   IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP, IORING_SETUP_CLAMP,
                                   0};
        int rc = -EINVAL;
        for (const unsigned flags : wanted) {
            io_uring_params p{};
            p.flags = flags;
            rc = io_uring_queue_init_params(entries, &r.ring, &p);
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
        r.initialized = true;
        std::string missing;
        if ((features_ & IORING_FEAT_EXT_ARG) == 0)
            missing = "IORING_FEAT_EXT_ARG";
        if (io_uring_probe* probe = io_uring_get_probe_ring(&r.ring)) {
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
            throw std::system_error(ENOSYS, std::system_category(),
                                    "eddy: io_uring lacks " + missing);
        }
    }

    /// Sets up a further ring with the flags ring 0 got.
    void setup_more(uring_ring& r, unsigned entries) {
        io_uring_params p{};
        p.flags = setup_flags_;
        if (const int rc = io_uring_queue_init_params(entries, &r.ring, &p); rc < 0)
            throw std::system_error(-rc, std::system_category(), "eddy: io_uring_setup");
        r.initialized = true;
    }

    void release_rings() noexcept {
        for (auto& r : rings_) {
            if (r->initialized)
                io_uring_queue_exit(&r->ring);
            r->initialized = false;
        }
        if (wakefd_ >= 0)
            ::close(wakefd_);
        wakefd_ = -1;
    }

    static void mark_unsubmitted(uring_ring& r) noexcept {
        r.unsubmitted.store(true, memory_order_relaxed);
    }

    /// The ring of the calling thread (a worker's own; ring 0 for any other thread).
    [[nodiscard]] uring_ring& own_ring() const noexcept {
        return *rings_[context().worker_index % rings_.size()];
    }

    /// Hands the calling thread's queued entries to the kernel; false when it had none. Only
    /// the thread a ring belongs to queues entries there and leaves them for its next flush
    /// (every other path submits at once), so no thread enters another's ring: two threads
    /// entering one ring contend on the kernel's ring lock.
    bool submit_own() noexcept {
        uring_ring& r = own_ring();
        if (!r.unsubmitted.load(memory_order_relaxed))
            return false;
        submit_now(r);
        return true;
    }

    /// Publishes the queued entries under sq_lock and hands them to the kernel outside it. The
    /// system call runs what can complete at once, so holding the lock across it made the other
    /// threads spin. Concurrent io_uring_enter calls are fine: the kernel serializes submission
    /// and submits at most what was published.
    void submit_now(uring_ring& r) noexcept {
        unsigned n = 0;
        {
            std::lock_guard lock(r.sq_lock);
            n = publish_locked(r);
        }
        if (n == 0)
            return;
        const int done = io_uring_enter(r.ring.ring_fd, n, 0, 0, nullptr);
        if (done > 0)
            count_submissions(static_cast<std::size_t>(done));
    }

    /// Makes the prepared entries visible to the kernel (what io_uring_submit does before its
    /// system call); returns how many are waiting for it. Caller holds r.sq_lock.
    static unsigned publish_locked(uring_ring& r) noexcept {
        r.unsubmitted.store(false, memory_order_relaxed);
        io_uring_sq& sq = r.ring.sq;
        const unsigned tail = sq.sqe_tail;
        if (sq.sqe_head != tail) {
            sq.sqe_head = tail;
            __atomic_store_n(sq.ktail, tail, __ATOMIC_RELEASE);
        }
        return tail - __atomic_load_n(sq.khead, __ATOMIC_ACQUIRE);
    }

    /// Caller holds r.sq_lock (rare paths: a full submission queue, a cancellation).
    void submit_locked(uring_ring& r) noexcept {
        r.unsubmitted.store(false, memory_order_relaxed);
        const int n = io_uring_submit(&r.ring);
        if (n > 0)
            count_submissions(static_cast<std::size_t>(n));
    }

    /// Turns the entry of `c`, if it is still queued and not yet handed to the kernel, into a
    /// no-op whose completion is ignored. Caller holds r.sq_lock.
    static bool withdraw_unsubmitted_locked(uring_ring& r, uring_completion& c) noexcept {
        const auto data = reinterpret_cast<std::uint64_t>(&c);
        // [sqe_head, sqe_tail): prepared entries the next io_uring_submit will hand over.
        for (unsigned i = r.ring.sq.sqe_head; i != r.ring.sq.sqe_tail; ++i) {
            io_uring_sqe* sqe = &r.ring.sq.sqes[i & r.ring.sq.ring_mask];
            if (sqe->user_data == data) {
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, cancel_tag);
                return true;
            }
        }
        return false;
    }

    /// Unlocked hint (the reaper advances the head concurrently); reap re-checks under the lock.
    [[nodiscard]] static bool cq_has_entries(const uring_ring& r) noexcept {
        return __atomic_load_n(r.ring.cq.ktail, __ATOMIC_ACQUIRE) !=
               __atomic_load_n(r.ring.cq.khead, __ATOMIC_RELAXED);
    }

    [[nodiscard]] static bool cq_needs_flush(const uring_ring& r) noexcept {
        // ORDERING: a hint only; reap re-checks under the lock.
        return (__atomic_load_n(r.ring.sq.kflags, __ATOMIC_RELAXED) & IORING_SQ_CQ_OVERFLOW) != 0;
    }

    /// With COOP_TASKRUN, completions that need the submitting thread (a receive whose data came
    /// later) wait for it to enter the kernel instead of interrupting it. The kernel flags that
    /// in the ring; entering runs them, and their CQEs appear.
    void run_own_task_work() noexcept {
        uring_ring& r = own_ring();
        // ORDERING: a hint written by the kernel; entering re-checks.
        if ((__atomic_load_n(r.ring.sq.kflags, __ATOMIC_RELAXED) & IORING_SQ_TASKRUN) != 0)
            (void)io_uring_get_events(&r.ring);
    }

    [[nodiscard]] bool any_ring_has_entries() const noexcept {
        for (const auto& r : rings_) {
            if (cq_has_entries(*r) || cq_needs_flush(*r))
                return true;
        }
        return false;
    }

    /// Reaps ring `r` unless another thread is doing so.
    std::size_t poll_ring(uring_ring& r) noexcept {
        if (!cq_has_entries(r) && !cq_needs_flush(r))
            return 0;
        std::unique_lock lock(r.cq_lock, std::try_to_lock);
        if (!lock.owns_lock())
            return 0;
        return reap(r, lock);
    }

    /// Reaps every available completion of `r`; `lock` holds r.cq_lock and is released before
    /// waking.
    std::size_t reap(uring_ring& r, std::unique_lock<std::mutex>& lock) noexcept {
        // Reused allocations; waking or dropping a waker may re-enter (a task freed by the drop
        // cancels an operation), which then finds the thread's buffers empty.
        std::vector<wake_target*> wakes;
        std::vector<wake_target*> drops;
        wakes.swap(wake_buffer());
        drops.swap(drop_buffer());
        std::size_t total = 0;
        std::array<io_uring_cqe*, 64> cqes{};
        for (;;) {
            const unsigned n = io_uring_peek_batch_cqe(&r.ring, cqes.data(), cqes.size());
            if (n == 0)
                break;
            for (unsigned i = 0; i < n; ++i) {
                const std::uint64_t tag = cqes[i]->user_data;
                if (tag == cancel_tag)
                    continue;
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
            io_uring_cq_advance(&r.ring, n);
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

    std::vector<std::unique_ptr<uring_ring>> rings_; ///< [i]: worker i's
    unsigned setup_flags_ = 0;
    unsigned features_ = 0;
    int wakefd_ = -1;
    atomic<bool> wake_requested_{false}; ///< set by wake(), consumed by the next wait()
};

} // namespace eddy::detail
