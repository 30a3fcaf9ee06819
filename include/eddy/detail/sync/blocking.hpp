#pragma once
//! Pieces every `blocking_*` call (channels, locks, semaphores) shares: the check that the caller
//! is not a runtime thread, and an owned `thread_waker` to park the calling thread on.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/task/thread_waker.hpp>

#include <stdexcept>
#include <string>

namespace eddy::detail {

/// Throws `std::logic_error` when the calling thread runs a runtime's tasks (a worker or a
/// `block_on` caller): parking it would stall that runtime, or deadlock it.
inline void check_blocking_allowed(const char* what) {
    if (context().sched != nullptr) {
        throw std::logic_error(std::string("eddy: ") + what +
                               " called from a thread that runs a runtime's tasks; it would "
                               "block that runtime: co_await the async form instead");
    }
}

/// A `thread_waker` owned by the calling thread for the duration of one blocking call.
class blocking_waiter {
public:
    blocking_waiter() : tw_(new thread_waker) {}
    blocking_waiter(const blocking_waiter&) = delete;
    blocking_waiter& operator=(const blocking_waiter&) = delete;
    ~blocking_waiter() { tw_->release(); }

    /// A waker that unparks this thread.
    [[nodiscard]] waker make() const noexcept { return make_waker(tw_); }
    /// Sleeps until a waker made here is woken (or was woken before the call).
    void park() noexcept { tw_->park.park(); }

private:
    thread_waker* tw_;
};

} // namespace eddy::detail
