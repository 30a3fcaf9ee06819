#pragma once
//! `eddy::waker`: a handle that reschedules a suspended task.
//!
//! A waker holds one reference to its target (usually a spawned task), so the task's memory stays
//! valid while any waker exists. Read the contract at `current_waker` before writing an awaitable.
//! Waking a task that is running marks it to be polled again when it next suspends; waking a
//! finished task does nothing. Wakers may be woken, cloned and dropped from any thread. Custom
//! awaitables obtain one with `eddy::current_waker(handle)` inside their `await_suspend`.

#include <eddy/config.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/wake_target.hpp>

#include <coroutine>
#include <stdexcept>
#include <utility>

namespace eddy {

class waker {
public:
    waker() noexcept = default;
    /// Adopts one reference to `target`.
    explicit waker(detail::wake_target* target) noexcept : target_(target) {}

    waker(waker&& other) noexcept : target_(std::exchange(other.target_, nullptr)) {}
    waker& operator=(waker&& other) noexcept {
        if (this != &other) {
            reset();
            target_ = std::exchange(other.target_, nullptr);
        }
        return *this;
    }
    waker(const waker&) = delete;
    waker& operator=(const waker&) = delete;
    ~waker() { reset(); }

    /// A second waker for the same task.
    [[nodiscard]] waker clone() const noexcept {
        if (target_ != nullptr)
            target_->vtable->clone(target_);
        return waker(target_);
    }

    /// Wakes the task and empties this waker.
    void wake() noexcept {
        if (auto* t = std::exchange(target_, nullptr))
            t->vtable->wake(t);
    }

    /// Wakes the task and keeps this waker usable.
    void wake_by_ref() const noexcept {
        if (target_ != nullptr)
            target_->vtable->wake_by_ref(target_);
    }

    /// True when both wake the same task.
    [[nodiscard]] bool will_wake(const waker& other) const noexcept {
        return target_ == other.target_;
    }

    explicit operator bool() const noexcept { return target_ != nullptr; }

    /// Releases ownership of the reference without dropping it.
    [[nodiscard]] detail::wake_target* release() noexcept {
        return std::exchange(target_, nullptr);
    }

    void reset() noexcept {
        if (auto* t = std::exchange(target_, nullptr))
            t->vtable->drop(t);
    }

private:
    detail::wake_target* target_ = nullptr;
};

/// From an `await_suspend(h)` of a custom awaitable: records `h` as the point where the current
/// spawned task resumes and returns a waker for it. Throws `std::logic_error` when the calling
/// coroutine does not run inside a spawned eddy task (for example a foreign coroutine type).
///
/// The contract (eddy resumes coroutines, it does not re-poll them as Rust does): a wake means
/// "the awaited condition holds, resume at `h`". Wake once, only when the condition holds, and
/// never after the awaitable has resumed or been destroyed; drop the other clones unwoken. An
/// awaitable that registers its waker in several places must withdraw the others (under its own
/// lock) before or when one fires, and its destructor must withdraw any still registered, so
/// cancellation leaves nothing behind. A stray wake would resume whatever the task awaits next.
inline waker current_waker(std::coroutine_handle<> h) {
    detail::resumable* t = detail::context().task;
    if (t == nullptr) {
        throw std::logic_error(
            "eddy: this awaitable must be awaited inside a task run by an eddy runtime");
    }
    t->resume_point = h;
    t->vtable->clone(t);
    return waker(t);
}

} // namespace eddy
