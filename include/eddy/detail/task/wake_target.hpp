#pragma once
//! The type-erased object a `waker` points at, with its four operations (Rust's RawWaker shape).
//!
//! A spawned task's header is a wake target; combinators can make their own (a branch that
//! forwards to its parent task). Every operation may be called from any thread.
//!
//! A `resumable` is a wake target that something polls by resuming a coroutine: a spawned task,
//! or a combinator's branch. `current_waker(h)` records `h` in the resumable being polled (the
//! thread context's `task`) and returns a waker for it.
//!
//! Instead of a coroutine, a suspended resumable may resume through a `resume_gate`: an awaiter
//! that re-checks its condition first, on the polling thread, and either lets its coroutine
//! resume or waits again without resuming it. The I/O operations use it so that waiting for
//! readiness needs no coroutine frame of its own (the awaiter retries the system call from the
//! gate). Only resumables whose vtable says `runs_gates` honour gates; elsewhere (a proxy that
//! forwards wakes to another task) an awaiter must resume its coroutine directly.

#include <eddy/config.hpp>

#include <eddy/detail/context.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace eddy::detail {

struct wake_target;
struct resumable;

struct wake_vtable {
    void (*wake)(wake_target*) noexcept;        ///< wake and consume one reference
    void (*wake_by_ref)(wake_target*) noexcept; ///< wake, keep the reference
    void (*clone)(wake_target*) noexcept;       ///< take one more reference
    void (*drop)(wake_target*) noexcept;        ///< release one reference
    bool runs_gates = false;                    ///< a resumable that polls through `resume_gate`s
};

struct wake_target {
    const wake_vtable* vtable;
};

/// A check that runs when a suspended resumable is polled, before its coroutine resumes (see the
/// module comment). `check` returns true to resume the coroutine, having set the resumable's
/// resume point back to it; false when it waits again, having registered a new waker and left
/// the resume point on the gate. It runs on the polling thread, with the resumable as the
/// context's `task`.
struct resume_gate {
    bool (*check)(resume_gate* self, resumable& r) noexcept;
};

/// Where a suspended resumable continues: a coroutine, or a gate in front of one. Null once there
/// is nothing to resume (a task's frame destroyed).
class resume_target {
public:
    resume_target() noexcept = default;
    resume_target(std::nullptr_t) noexcept {}
    template <class Promise>
    resume_target(std::coroutine_handle<Promise> h) noexcept
        : bits_(reinterpret_cast<std::uintptr_t>(h.address())) {}
    explicit resume_target(resume_gate* g) noexcept
        : bits_(reinterpret_cast<std::uintptr_t>(g) | gate_bit) {}

    explicit operator bool() const noexcept { return bits_ != 0; }

    /// The gate, if the resume point is one.
    [[nodiscard]] resume_gate* gate() const noexcept {
        return (bits_ & gate_bit) != 0 ? reinterpret_cast<resume_gate*>(bits_ & ~gate_bit)
                                       : nullptr;
    }

    /// The coroutine (the resume point must not be a gate).
    [[nodiscard]] std::coroutine_handle<> coroutine() const noexcept {
        EDDY_ASSERT((bits_ & gate_bit) == 0);
        return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(bits_));
    }

private:
    // Coroutine frames and gates are at least pointer-aligned: the low bit is free for the tag.
    static constexpr std::uintptr_t gate_bit = 1;
    std::uintptr_t bits_ = 0;
};

struct resumable : wake_target {
    /// The innermost suspended coroutine (or the gate in front of it): what the next poll resumes.
    resume_target resume_point{};
};

/// Polls `r`: passes its gate, if it has one, then resumes its coroutine on the trampoline. The
/// caller made `r` the context's `task`.
inline void poll_resumable(resumable& r) noexcept {
    if (resume_gate* g = r.resume_point.gate(); g != nullptr && !g->check(g, r))
        return;
    run_trampoline(r.resume_point.coroutine());
}

} // namespace eddy::detail
