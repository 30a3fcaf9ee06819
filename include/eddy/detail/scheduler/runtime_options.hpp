#pragma once
//! Settings a scheduler is built with (filled in by `runtime::builder`).

#include <eddy/config.hpp>

#include <eddy/io_backend.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>

namespace eddy {
struct task_id;
} // namespace eddy

namespace eddy::detail {

using unhandled_exception_hook = std::function<void(task_id, std::exception_ptr)>;

struct runtime_options {
    /// Ticks between checks of the inject queue before the local queue (fairness for remote work).
    std::uint32_t global_queue_interval = 31;
    /// Tasks polled between turns of the drivers (I/O, timers).
    std::uint32_t event_interval = 61;
    unhandled_exception_hook unhandled_exception;

    /// Workers of the multi-thread flavor (0: one per hardware thread).
    std::uint32_t worker_threads = 0;
    /// Name prefix of the runtime's threads (workers get "-<index>").
    std::string thread_name = "eddy-worker";
    /// Stack size of the runtime's threads; 0 keeps the system default.
    std::size_t thread_stack_size = 0;
    std::function<void()> on_thread_start;
    std::function<void()> on_thread_stop;

    /// Upper bound of the spawn_blocking pool.
    std::size_t max_blocking_threads = 512;
    /// Upper bound of the blocking pool's threads that run file operations at once (0: the
    /// default, see `default_max_file_threads`).
    std::size_t max_file_threads = 0;
    /// How long an idle blocking thread waits for work before it exits.
    std::chrono::nanoseconds thread_keep_alive = std::chrono::seconds(10);

    /// Start with the clock paused (current-thread flavor only).
    bool start_paused = false;
    /// The I/O driver's backend (`automatic`: see eddy/io_backend.hpp).
    eddy::io_backend io = eddy::io_backend::automatic;
    /// How long a worker that runs out of work polls the I/O driver, yielding between polls,
    /// before it sleeps (see parker::park_in).
    std::chrono::nanoseconds park_spin = std::chrono::microseconds(50);
};

} // namespace eddy::detail
