#pragma once
//! `detail::timer`: one registration with the current runtime's time driver, owned by the
//! awaitable that waits (sleep, timeout, interval). Destroying or cancelling it withdraws the
//! registration if it has not fired, so a cancelled awaitable leaves nothing behind.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/time/driver.hpp>

#include <stdexcept>
#include <utility>

namespace eddy::detail {

class timer {
public:
    timer() noexcept = default;
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    ~timer() { cancel(); }

    /// Registers with the current thread's runtime to wake `w` at `deadline`; the waker moves in.
    /// Returns false, leaving `w` alone, when the deadline is already due. Throws
    /// `std::logic_error` on a thread that belongs to no runtime.
    bool arm(time_source::time_point deadline, waker& w) {
        cancel();
        runtime_core* rt = context().runtime;
        if (rt == nullptr)
            throw std::logic_error("eddy: timers need a runtime (await inside an eddy task)");
        time_driver& driver = rt->time();
        if (!driver.arm(reg_, deadline, w, context().worker_index))
            return false;
        driver_ = &driver;
        return true;
    }

    /// Withdraws the registration unless it fired (then there is nothing to withdraw).
    void cancel() noexcept { withdraw().reset(); }

    /// Withdraws the registration and returns its waker, unwoken; empty when it fired (or was not
    /// armed).
    [[nodiscard]] waker withdraw() noexcept {
        if (driver_ == nullptr)
            return waker();
        return waker(std::exchange(driver_, nullptr)->withdraw(reg_));
    }

private:
    timer_registration reg_;
    time_driver* driver_ = nullptr; ///< where reg_ was armed last
};

} // namespace eddy::detail
