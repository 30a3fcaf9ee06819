#pragma once
//! Settings a scheduler is built with (filled in by `runtime::builder`).

#include <eddy/config.hpp>

#include <cstdint>
#include <exception>
#include <functional>

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
};

} // namespace eddy::detail
