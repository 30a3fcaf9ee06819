#pragma once
//! The epoll backend: readiness-based and edge-triggered.
//!
//! Every fd a socket owns is registered once (`register_fd`) for read and write readiness, with
//! a heap-allocated `scheduled_io` as the event's user data. It keeps:
//!  - a readiness word: the ready bits (readable, writable, read/write closed, error) in the low
//!    16 bits and an event sequence number in the high 16 bits, which the driver bumps with every
//!    event. An operation snapshots the word, tries its system call, and on EAGAIN clears the bits
//!    it needs only if the sequence has not moved (`clear_ready`): an event that arrived in
//!    between is never lost.
//!  - the waiters (awaiters suspended until a direction is ready), an intrusive list under a spin
//!    lock. An event wakes every waiter whose interest it covers.
//!
//! Deregistration (a socket closing) removes the fd from epoll at once, but frees the
//! `scheduled_io` only at the end of the driver's next turn that started after it: a turn that
//! was already inside epoll_wait may have received an event pointing at it. Turns are serialized
//! by `turn_lock_`, so "the next turn" is well defined.
//!
//! Waking the driver from another thread writes to an eventfd registered with user data null.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/wake_target.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace eddy::detail {

/// Readiness bits of a `scheduled_io`.
namespace ready {
inline constexpr std::uint32_t readable = 1U << 0;
inline constexpr std::uint32_t writable = 1U << 1;
inline constexpr std::uint32_t read_closed = 1U << 2;
inline constexpr std::uint32_t write_closed = 1U << 3;
inline constexpr std::uint32_t error = 1U << 4;
/// What wakes an operation that reads (a closed or failed socket makes the read return at once).
inline constexpr std::uint32_t read_interest = readable | read_closed | error;
/// What wakes an operation that writes.
inline constexpr std::uint32_t write_interest = writable | write_closed | error;
} // namespace ready

/// An awaiter suspended until its fd is ready in some direction.
struct io_waiter : list_node<io_waiter> {
    wake_target* waker = nullptr; ///< guarded by the scheduled_io's lock while linked
    std::uint32_t interest = 0;
};

/// One fd registered with the epoll driver (see the module comment).
class scheduled_io {
public:
    explicit scheduled_io(int fd) noexcept : fd_(fd) {}

    [[nodiscard]] int fd() const noexcept { return fd_; }

    /// The readiness word: bits in the low half, event sequence in the high half.
    [[nodiscard]] std::uint32_t snapshot() const noexcept {
        // ORDERING: acquire pairs with set_ready's release (what the event made visible).
        return state_.load(memory_order_acquire);
    }
    [[nodiscard]] static std::uint32_t bits(std::uint32_t word) noexcept { return word & 0xffffU; }

    /// Clears `mask` unless an event arrived since `word` was read.
    void clear_ready(std::uint32_t word, std::uint32_t mask) noexcept {
        std::uint32_t current = word;
        // Never clear "closed" or "error": they are final.
        const std::uint32_t clearable = mask & (ready::readable | ready::writable);
        while (!state_.compare_exchange_weak(current, current & ~clearable, memory_order_acq_rel,
                                             memory_order_acquire)) {
            if ((current >> 16) != (word >> 16))
                return; // a newer event: keep its bits
        }
    }

    /// The driver: records `bits` and wakes the waiters they satisfy.
    void set_ready(std::uint32_t bits) noexcept {
        std::uint32_t current = state_.load(memory_order_relaxed);
        std::uint32_t next = 0;
        do {
            const std::uint32_t seq = ((current >> 16) + 1) & 0xffffU;
            next = (seq << 16) | ((current | bits) & 0xffffU);
            // ORDERING: release pairs with snapshot's acquire.
        } while (!state_.compare_exchange_weak(current, next, memory_order_acq_rel,
                                               memory_order_relaxed));
        wake_waiters(bits);
    }

    /// Links `w` to be woken, through a waker for `h` (see `current_waker`), once the fd is ready
    /// for `w.interest`. False, linking nothing, when it is ready already. A waiter still linked
    /// (its task was polled for another reason) stays as it is.
    bool add_waiter(io_waiter& w, std::coroutine_handle<> h) {
        waker wk = current_waker(h);
        std::lock_guard lock(lock_);
        // set_ready stores the bits before it takes the lock to collect waiters.
        if ((bits(snapshot()) & w.interest) != 0)
            return false; // wk drops its reference: the task is running
        if (w.linked())
            return true;
        w.waker = wk.release();
        waiters_.push_back(&w);
        return true;
    }

    /// Unlinks `w` if it is still waiting (cancellation), dropping its waker.
    void remove_waiter(io_waiter& w) noexcept {
        wake_target* t = nullptr;
        {
            std::lock_guard lock(lock_);
            if (w.linked()) {
                waiters_.remove(&w);
                t = std::exchange(w.waker, nullptr);
            }
        }
        waker(t).reset();
    }

    /// Suspends until the fd is ready for `interest` (`ready::read_interest` or
    /// `ready::write_interest`). Cancel-safe: destroying the awaiter withdraws it.
    class awaiter {
    public:
        awaiter(scheduled_io& io, std::uint32_t interest) noexcept : io_(io) {
            waiter_.interest = interest;
        }
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (suspended_)
                io_.remove_waiter(waiter_);
        }

        [[nodiscard]] bool await_ready() const noexcept {
            return (bits(io_.snapshot()) & waiter_.interest) != 0;
        }

        bool await_suspend(std::coroutine_handle<> h) {
            suspended_ = io_.add_waiter(waiter_, h);
            return suspended_;
        }

        void await_resume() const noexcept {}

    private:
        scheduled_io& io_;
        io_waiter waiter_;
        bool suspended_ = false;
    };

    [[nodiscard]] awaiter ready_for(std::uint32_t interest) noexcept {
        return awaiter(*this, interest);
    }

    scheduled_io* next_release = nullptr; ///< the driver's deferred-release list

private:
    void wake_waiters(std::uint32_t bits) noexcept {
        constexpr std::size_t batch = 16;
        for (;;) {
            std::array<wake_target*, batch> due{};
            std::size_t n = 0;
            bool more = false;
            {
                std::lock_guard lock(lock_);
                for (io_waiter* w = waiters_.front(); w != nullptr;) {
                    io_waiter* next = intrusive_list<io_waiter>::next(w);
                    if ((w->interest & bits) != 0) {
                        if (n == batch) {
                            more = true;
                            break;
                        }
                        waiters_.remove(w);
                        due[n++] = std::exchange(w->waker, nullptr);
                    }
                    w = next;
                }
            }
            for (std::size_t i = 0; i < n; ++i)
                waker(due[i]).wake();
            if (!more)
                return;
        }
    }

    const int fd_;
    atomic<std::uint32_t> state_{0};
    spin_lock lock_;
    intrusive_list<io_waiter> waiters_;
};

class epoll_driver final : public io_driver {
public:
    epoll_driver() : io_driver(io_backend::epoll) {
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0)
            throw std::system_error(errno, std::system_category(), "eddy: epoll_create1");
        wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wakefd_ < 0) {
            const int e = errno;
            ::close(epfd_);
            throw std::system_error(e, std::system_category(), "eddy: eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.ptr = nullptr;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
            const int e = errno;
            ::close(wakefd_);
            ::close(epfd_);
            throw std::system_error(e, std::system_category(), "eddy: epoll_ctl(eventfd)");
        }
    }

    ~epoll_driver() override {
        free_list(std::exchange(released_, nullptr));
        ::close(wakefd_);
        ::close(epfd_);
    }

    /// Registers `fd` (non-blocking) for edge-triggered read and write readiness. Returns the
    /// registration, or the error of epoll_ctl (e.g. EPERM for a regular file).
    [[nodiscard]] scheduled_io* register_fd(int fd, std::error_code& ec) {
        auto* io = new scheduled_io(fd);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
        ev.data.ptr = io;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
            ec.assign(errno, std::system_category());
            delete io;
            return nullptr;
        }
        count_source(1);
        return io;
    }

    /// Removes the fd from epoll (the caller closes it afterwards) and releases `io` once no
    /// turn can still see it.
    void deregister(scheduled_io* io) noexcept {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, io->fd(), nullptr);
        {
            std::lock_guard lock(release_lock_);
            io->next_release = released_;
            released_ = io;
        }
        count_source(-1);
    }

    std::size_t wait(std::optional<std::chrono::nanoseconds> timeout) noexcept override {
        std::lock_guard lock(turn_lock_);
        // A wake that came before we held the lock may have been consumed by another thread's
        // poll(): the flag keeps it, so this wait does not sleep through it.
        if (wake_requested_.exchange(false, memory_order_acq_rel))
            return turn(0);
        return turn(timeout_ms(timeout));
    }

    std::size_t poll() noexcept override {
        std::unique_lock lock(turn_lock_, std::try_to_lock);
        if (!lock.owns_lock())
            return 0;
        return turn(0);
    }

    void wake() noexcept override {
        count_wake();
        // ORDERING: release, before the write, pairs with wait()'s exchange.
        wake_requested_.store(true, memory_order_release);
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wakefd_, &one, sizeof one);
    }

private:
    std::size_t turn(int timeout_ms) noexcept {
        scheduled_io* release = nullptr;
        {
            std::lock_guard lock(release_lock_);
            release = std::exchange(released_, nullptr);
        }
        int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
        if (n < 0)
            n = 0; // EINTR: a signal; the caller looks at its queues and comes back
        std::size_t dispatched = 0;
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = events_[static_cast<std::size_t>(i)];
            if (ev.data.ptr == nullptr) {
                std::uint64_t count = 0;
                [[maybe_unused]] const ssize_t r = ::read(wakefd_, &count, sizeof count);
                continue;
            }
            static_cast<scheduled_io*>(ev.data.ptr)->set_ready(bits_of(ev.events));
            ++dispatched;
        }
        free_list(release);
        count_events(dispatched);
        return dispatched;
    }

    static std::uint32_t bits_of(std::uint32_t events) noexcept {
        std::uint32_t b = 0;
        if ((events & (EPOLLIN | EPOLLPRI)) != 0)
            b |= ready::readable;
        if ((events & EPOLLOUT) != 0)
            b |= ready::writable;
        if ((events & EPOLLRDHUP) != 0)
            b |= ready::read_closed | ready::readable;
        if ((events & EPOLLHUP) != 0)
            b |= ready::read_closed | ready::write_closed | ready::readable | ready::writable;
        if ((events & EPOLLERR) != 0)
            b |= ready::error | ready::readable | ready::writable;
        return b;
    }

    static void free_list(scheduled_io* io) noexcept {
        while (io != nullptr)
            delete std::exchange(io, io->next_release);
    }

    int epfd_ = -1;
    int wakefd_ = -1;
    std::mutex turn_lock_; ///< held by the thread turning the driver (possibly asleep in it)
    std::array<epoll_event, 256> events_{};
    spin_lock release_lock_;
    scheduled_io* released_ = nullptr;   ///< deregistered, freed after the next turn
    atomic<bool> wake_requested_{false}; ///< set by wake(), consumed by the next wait()
};

} // namespace eddy::detail
