#pragma once
//! The type-erased object a `waker` points at, with its four operations (Rust's RawWaker shape).
//!
//! A spawned task's header is a wake target; combinators can make their own (a branch that
//! forwards to its parent task). Every operation may be called from any thread.
//!
//! A `resumable` is a wake target that something polls by resuming a coroutine: a spawned task,
//! or a combinator's branch. `current_waker(h)` records `h` in the resumable being polled (the
//! thread context's `task`) and returns a waker for it.

#include <coroutine>

namespace eddy::detail {

struct wake_target;

struct wake_vtable {
    void (*wake)(wake_target*) noexcept;        ///< wake and consume one reference
    void (*wake_by_ref)(wake_target*) noexcept; ///< wake, keep the reference
    void (*clone)(wake_target*) noexcept;       ///< take one more reference
    void (*drop)(wake_target*) noexcept;        ///< release one reference
};

struct wake_target {
    const wake_vtable* vtable;
};

struct resumable : wake_target {
    /// The innermost suspended coroutine: what the next poll resumes.
    std::coroutine_handle<> resume_point{};
};

} // namespace eddy::detail
