#pragma once
//! `eddy::runtime_metrics`: a snapshot of a runtime's counters, from `runtime::handle::metrics()`.
//!
//! Counters are cumulative since the runtime started; depths are sampled when the snapshot is
//! taken. Taking a snapshot is safe from any thread at any time and does not stop the workers:
//! the fields are read one by one, so they need not add up exactly while the runtime is busy.

#include <eddy/config.hpp>

#include <eddy/io_backend.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace eddy {

struct worker_metrics {
    std::uint64_t polls = 0;            ///< tasks polled by this worker
    std::uint64_t steals = 0;           ///< tasks this worker stole from others
    std::uint64_t steal_operations = 0; ///< successful steal attempts (each takes up to half)
    std::uint64_t parks = 0;            ///< times the worker went to sleep for lack of work
    std::uint64_t unparks = 0;          ///< times another thread woke it for new work
    std::uint64_t overflows = 0; ///< times its full local queue spilled half to the inject queue
    std::uint64_t spawned = 0;   ///< tasks spawned from this worker
    std::size_t local_queue_depth = 0; ///< tasks waiting in its local queue now
};

struct runtime_metrics {
    std::size_t workers = 0;
    std::vector<worker_metrics> per_worker;
    std::size_t inject_queue_depth = 0; ///< tasks waiting in the global queue now
    std::uint64_t spawned_tasks = 0;    ///< all spawns so far (workers' and foreign threads')
    std::size_t alive_tasks = 0;        ///< spawned and not yet completed
    std::size_t blocking_threads = 0;   ///< threads in the spawn_blocking pool
    std::size_t idle_blocking_threads = 0;
    std::size_t blocking_queue_depth = 0; ///< spawn_blocking closures waiting for a thread
    std::size_t active_timers = 0;        ///< timers registered now (sleeps, timeouts, ticks)
    std::uint64_t fired_timers = 0;       ///< timers that fired so far
    eddy::io_backend io_backend = eddy::io_backend::automatic; ///< the backend the driver uses
    std::uint64_t io_registered_sources = 0; ///< fds registered with the driver now (epoll)
    std::uint64_t io_events = 0;             ///< readiness events (epoll) or completions (io_uring)
    std::uint64_t io_submissions = 0;        ///< operations handed to the kernel (io_uring)
    /// System calls that handed them over (io_uring): `io_submissions / io_submit_calls` is the
    /// average batch. A worker submits once its run queue is empty, or every 16 tasks it polls.
    std::uint64_t io_submit_calls = 0;
    std::uint64_t io_driver_wakes = 0; ///< times another thread woke the driver's sleeper
    /// Socket operations whose system call found nothing to do (EAGAIN), so they waited for
    /// readiness and called again (epoll): each is a system call spent for nothing. A socket known
    /// to be drained is not tried until its next event, so a request-response exchange adds
    /// (almost) none.
    std::uint64_t io_would_block = 0;

    /// Sum of a per-worker counter, e.g. `m.total(&worker_metrics::steals)`.
    [[nodiscard]] std::uint64_t total(std::uint64_t worker_metrics::*field) const noexcept {
        std::uint64_t sum = 0;
        for (const auto& w : per_worker)
            sum += w.*field;
        return sum;
    }
};

} // namespace eddy
