#pragma once
//! The time driver: a runtime's timer wheels, and the rules for waiting on them.
//!
//! Timers are sharded: one wheel per worker, each behind its own spin lock, so workers that
//! register and cancel timers at the same time do not queue behind one lock. A registration goes
//! to the shard of the registering worker (`hint`) and remembers it, so cancelling (possibly from
//! another worker) locks that shard only.
//!
//! Firing ("processing"): any runtime thread may call `process()`; for every shard it polls the
//! wheel up to the current tick under the shard's lock, and for each expired registration takes
//! its waker out and marks it disarmed, all under that lock. The wakers are woken after the locks
//! are released. Workers process timers every `event_interval` polls, and the thread parked on the
//! driver processes them when it wakes.
//!
//! Parking: one thread at a time holds the park role (`try_acquire_park_role`) and sleeps in
//! `park()` until the earliest timer is due or it is unparked. A registration earlier than the
//! time that thread sleeps until unparks it, so it can sleep less. With an I/O driver (`set_io`)
//! the thread sleeps in it (epoll_wait / io_uring wait) instead of a futex, and I/O events end the
//! sleep too.
//!
//! Registration lifetime (invariant 2): a `timer_registration` lives in the awaitable that waits.
//! Its destructor calls `disarm`, which unlinks it from its wheel if it has not fired. Once fired,
//! the driver no longer touches it: the waker was moved out under the shard lock, and `armed` was
//! cleared (release) under it too, so an owner that sees `armed == false` may free it at once.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/scheduler/park.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/wake_target.hpp>
#include <eddy/detail/time/entry.hpp>
#include <eddy/detail/time/source.hpp>
#include <eddy/detail/time/wheel.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace eddy::detail {

/// One timer: intrusive in the awaitable that waits for it.
struct timer_registration : timer_entry {
    wake_target* waker = nullptr; ///< the shard's lock guards it while armed
    std::uint64_t target = 0;     ///< the deadline tick (the wheel may hold a clamped one)
    atomic<bool> armed{false};    ///< registered and not fired; cleared under the shard lock
    std::uint32_t shard = 0;
};

class time_driver {
public:
    using time_point = time_source::time_point;

    time_driver(std::uint32_t shards, bool start_paused)
        : source_(start_paused), shards_(std::max<std::uint32_t>(shards, 1)) {
        for (auto& s : shards_)
            s = std::make_unique<shard>();
    }

    time_driver(const time_driver&) = delete;
    time_driver& operator=(const time_driver&) = delete;

    /// The driver parked threads sleep in (set once, before any thread parks), and how long they
    /// poll it before sleeping (see parker::park_in).
    void set_io(park_driver* io, std::chrono::nanoseconds spin) noexcept {
        io_ = io;
        spin_ = spin;
    }

    [[nodiscard]] time_source& source() noexcept { return source_; }
    [[nodiscard]] const time_source& source() const noexcept { return source_; }

    /// Registers `r` to wake `w` at `deadline`, in the shard `hint` picks. Returns false, taking
    /// nothing, when the deadline is already due: the caller goes on at once.
    bool arm(timer_registration& r, time_point deadline, waker& w, std::uint32_t hint) {
        EDDY_ASSERT(!r.armed.load(memory_order_relaxed));
        const std::uint64_t tick = source_.tick_at_or_after(deadline);
        const auto n = static_cast<std::uint32_t>(shards_.size());
        const std::uint32_t index = hint < n ? hint : hint % n; // a worker's index is below n
        shard& s = *shards_[index];
        {
            std::lock_guard lock(s.lock);
            if (!s.timers.insert(&r, tick))
                return false;
            r.waker = w.release();
            r.target = tick;
            r.shard = index;
            r.armed.store(true, memory_order_relaxed);
            s.count.store(s.timers.size(), memory_order_relaxed);
        }
        notify_if_earlier(tick);
        return true;
    }

    /// Cancels `r` if it is still registered (dropping its waker unwoken). Any thread.
    void disarm(timer_registration& r) noexcept { waker(withdraw(r)).reset(); }

    /// Cancels `r` if it is still registered and hands its waker back (one reference, unwoken);
    /// null when it fired or was not armed. Any thread.
    [[nodiscard]] wake_target* withdraw(timer_registration& r) noexcept {
        // ORDERING: acquire pairs with the release in process(): if it fired, the driver's last
        // touch of `r` happens before our return (and the owner's free of `r`).
        if (!r.armed.load(memory_order_acquire))
            return nullptr;
        wake_target* w = nullptr;
        {
            shard& s = *shards_[r.shard];
            std::lock_guard lock(s.lock);
            if (r.registered) {
                s.timers.remove(&r);
                s.count.store(s.timers.size(), memory_order_relaxed);
                w = std::exchange(r.waker, nullptr);
            }
            r.armed.store(false, memory_order_relaxed);
        }
        return w;
    }

    /// Fires every timer due at `source().now()`. Returns how many fired.
    std::size_t process() {
        if (active() == 0)
            return 0;
        const std::uint64_t now = source_.now_tick();
        std::vector<wake_target*> due;
        due.swap(wake_buffer()); // a reused allocation; re-entry would find it empty
        for (auto& sp : shards_) {
            shard& s = *sp;
            std::lock_guard lock(s.lock);
            s.timers.poll(now, s.expired);
            while (timer_entry* e = s.expired.pop_front()) {
                auto* r = static_cast<timer_registration*>(e);
                if (r->target > now) {
                    // Clamped to the wheel's range: not due yet, go round again.
                    s.timers.insert(r, r->target);
                    continue;
                }
                due.push_back(std::exchange(r->waker, nullptr));
                // ORDERING: release pairs with disarm's acquire (see the module comment).
                r->armed.store(false, memory_order_release);
            }
            s.count.store(s.timers.size(), memory_order_relaxed);
        }
        const std::size_t n = due.size();
        fired_.fetch_add(n, memory_order_relaxed);
        for (wake_target* w : due)
            waker(w).wake();
        due.clear();
        due.swap(wake_buffer());
        return n;
    }

    /// The tick at which `process` will next have work, if any timer is registered.
    [[nodiscard]] std::optional<std::uint64_t> next_expiration() const {
        std::optional<std::uint64_t> next;
        for (const auto& sp : shards_) {
            std::lock_guard lock(sp->lock);
            if (auto e = sp->timers.next_expiration()) {
                if (!next || e->deadline < *next)
                    next = e->deadline;
            }
        }
        return next;
    }

    /// Registered timers (approximate while other threads register or fire).
    [[nodiscard]] std::size_t active() const noexcept {
        std::size_t n = 0;
        for (const auto& sp : shards_)
            n += sp->count.load(memory_order_relaxed);
        return n;
    }

    /// Timers fired so far.
    [[nodiscard]] std::uint64_t fired() const noexcept { return fired_.load(memory_order_relaxed); }

    /// Claims the park role for the thread that parks on `p`. False when another thread has it.
    bool try_acquire_park_role(parker* p) noexcept {
        parker* expected = nullptr;
        // ORDERING: seq_cst with notify_if_earlier's loads (see park()).
        return parked_.compare_exchange_strong(expected, p, memory_order_seq_cst,
                                               memory_order_relaxed);
    }

    void release_park_role() noexcept { parked_.store(nullptr, memory_order_seq_cst); }

    /// Sleeps on `p` until it is unparked or the earliest timer is due, then fires the due timers.
    /// The caller holds the park role (multi-thread) or is the only thread (current-thread).
    ///
    /// Paused clock: with `auto_advance`, instead of sleeping the clock jumps to the next timer;
    /// without it (work is pending elsewhere, e.g. on the blocking pool) the thread sleeps up to
    /// `paused_poll` of real time and looks again.
    std::size_t park(parker& p, bool auto_advance) {
        // ORDERING: a registration that lands after the scan below reads either this "unknown"
        // marker or the value stored after the scan, and unparks us if it is earlier. seq_cst
        // orders the store before the scan's lock acquisitions.
        wait_until_.store(UINT64_MAX, memory_order_seq_cst);
        const std::optional<std::uint64_t> next = next_expiration();
        if (source_.paused()) {
            // Idle means no I/O is ready either: look (without blocking) before jumping ahead.
            const bool io_ready = io_ != nullptr && io_->wait(std::chrono::nanoseconds::zero()) > 0;
            if (io_ready) {
                // Tasks were woken: let them run before time moves.
            } else if (next && auto_advance) {
                source_.advance_to(source_.instant_of(*next));
            } else if (auto_advance) {
                sleep(p, std::nullopt);
            } else {
                sleep(p, paused_poll);
            }
        } else if (next) {
            wait_until_.store(*next, memory_order_seq_cst);
            const auto timeout = source_.instant_of(*next) - source_.now();
            if (timeout > std::chrono::nanoseconds::zero())
                sleep(p, timeout);
            else if (io_ != nullptr)
                io_->wait(std::chrono::nanoseconds::zero()); // due already: just look at I/O
        } else {
            sleep(p, std::nullopt);
        }
        wait_until_.store(UINT64_MAX, memory_order_seq_cst);
        return process();
    }

    /// How long a paused runtime that may not auto-advance sleeps before looking again.
    static constexpr std::chrono::milliseconds paused_poll{1};

private:
    struct alignas(64) shard {
        mutable spin_lock lock;
        wheel timers;
        timer_list expired; ///< scratch for process()
        atomic<std::size_t> count{0};
    };

    void sleep(parker& p, std::optional<std::chrono::nanoseconds> timeout) {
        if (io_ != nullptr) {
            p.park_in(*io_, timeout, spin_);
        } else if (timeout) {
            p.park_for(*timeout);
        } else {
            p.park();
        }
    }

    void notify_if_earlier(std::uint64_t tick) noexcept {
        // ORDERING: seq_cst, see park().
        if (parker* p = parked_.load(memory_order_seq_cst)) {
            if (tick < wait_until_.load(memory_order_seq_cst))
                p->unpark();
        }
    }

    static std::vector<wake_target*>& wake_buffer() noexcept {
        static thread_local std::vector<wake_target*> buffer;
        return buffer;
    }

    time_source source_;
    std::vector<std::unique_ptr<shard>> shards_;
    atomic<std::uint64_t> fired_{0};
    atomic<parker*> parked_{nullptr};
    atomic<std::uint64_t> wait_until_{UINT64_MAX};
    park_driver* io_ = nullptr;
    std::chrono::nanoseconds spin_{0};
};

} // namespace eddy::detail
