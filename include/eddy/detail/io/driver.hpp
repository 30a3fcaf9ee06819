#pragma once
//! The I/O driver interface: what the schedulers and the I/O operations need from a backend
//! (`epoll_driver.hpp`, readiness; `uring_driver.hpp`, completion).
//!
//! Turning the driver: the thread that holds the time driver's park role sleeps in `wait()`
//! (through `parker::park_in`) until an I/O event, the next timer or a wake; running workers call
//! `poll()` every `event_interval` polls so I/O is not starved while every worker is busy, and
//! `flush()` once they have no task queued, after `flush_batch::max_polls` tasks, and before they
//! sleep (io_uring submits the operations queued meanwhile in one system call). Only one thread
//! turns the driver at a time; `poll()` skips when another does.
//!
//! Lifetime: the runtime and every socket share the driver (`std::shared_ptr`), so a socket that
//! outlives its runtime can still be closed. After the runtime shut down (`shut_down()`), new
//! operations fail with `errc::shutdown`.

#include <eddy/config.hpp>

#include <eddy/io_backend.hpp>
#include <eddy/runtime_metrics.hpp>

#include <eddy/detail/scheduler/park.hpp>
#include <eddy/detail/sync/atomic.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace eddy::detail {

class io_driver : public park_driver {
public:
    io_driver(const io_driver&) = delete;
    io_driver& operator=(const io_driver&) = delete;
    virtual ~io_driver() = default;

    [[nodiscard]] io_backend kind() const noexcept { return kind_; }

    /// Dispatches the events that are ready without blocking. Skips (returns 0) when another
    /// thread is turning the driver.
    std::size_t poll() noexcept override = 0;

    /// Hands queued operations to the kernel (io_uring); nothing to do for epoll. Cheap when
    /// nothing is queued (schedulers call it after every poll).
    void flush() noexcept {
        if (unsubmitted_.load(memory_order_relaxed))
            flush_queued();
    }

    /// The runtime is gone: operations started from now on fail with `errc::shutdown`.
    void shut_down() noexcept { shut_down_.store(true, memory_order_release); }
    [[nodiscard]] bool is_shut_down() const noexcept {
        return shut_down_.load(memory_order_acquire);
    }

    void fill_metrics(runtime_metrics& m) const noexcept {
        m.io_backend = kind_;
        m.io_registered_sources = sources_.load(memory_order_relaxed);
        m.io_events = events_.load(memory_order_relaxed);
        m.io_submissions = submissions_.load(memory_order_relaxed);
        m.io_submit_calls = submit_calls_.load(memory_order_relaxed);
        m.io_driver_wakes = wakes_.load(memory_order_relaxed);
        m.io_would_block = would_block_.load(memory_order_relaxed);
    }

    /// An operation's system call found nothing to do (EAGAIN) and the operation waits.
    void count_would_block() noexcept { would_block_.fetch_add(1, memory_order_relaxed); }

protected:
    explicit io_driver(io_backend kind) noexcept : kind_(kind) {}

    virtual void flush_queued() noexcept {}

    /// Set by a backend that queued operations `flush` must hand over.
    atomic<bool> unsubmitted_{false};

    void count_events(std::size_t n) noexcept { events_.fetch_add(n, memory_order_relaxed); }
    /// One system call handed `n` operations to the kernel.
    void count_submissions(std::size_t n) noexcept {
        submissions_.fetch_add(n, memory_order_relaxed);
        submit_calls_.fetch_add(1, memory_order_relaxed);
    }
    void count_wake() noexcept { wakes_.fetch_add(1, memory_order_relaxed); }
    void count_source(std::int64_t delta) noexcept {
        sources_.fetch_add(static_cast<std::uint64_t>(delta), memory_order_relaxed);
    }

    /// Milliseconds for epoll_wait (rounded up: never wake before a timer is due), -1 for none.
    static int timeout_ms(std::optional<std::chrono::nanoseconds> timeout) noexcept {
        if (!timeout)
            return -1;
        if (*timeout <= std::chrono::nanoseconds::zero())
            return 0;
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
        return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
    }

private:
    const io_backend kind_;
    atomic<bool> shut_down_{false};
    atomic<std::uint64_t> sources_{0};
    atomic<std::uint64_t> events_{0};
    atomic<std::uint64_t> submissions_{0};
    atomic<std::uint64_t> submit_calls_{0};
    atomic<std::uint64_t> wakes_{0};
    atomic<std::uint64_t> would_block_{0};
};

/// When a worker flushes the driver: when its run queue runs dry, after `max_polls` polls in a
/// row (one system call submits what that many tasks queued, on io_uring, and an operation waits
/// at most that many polls before the kernel sees it), and before it sleeps (a worker that does
/// not hold the driver sleeps on its own parker, and no other thread submits its operations).
class flush_batch {
public:
    static constexpr std::uint32_t max_polls = 16;

    /// After polling a task; `queue_empty`: the worker has no task queued now.
    void after_poll(io_driver& d, bool queue_empty) noexcept {
        if (++unflushed_ >= max_polls || queue_empty)
            now(d);
    }

    /// Before sleeping.
    void now(io_driver& d) noexcept {
        unflushed_ = 0;
        d.flush();
    }

private:
    std::uint32_t unflushed_ = 0; ///< tasks polled since the last flush
};

} // namespace eddy::detail
