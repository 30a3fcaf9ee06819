#pragma once
//! `eddy::spawn_blocking`: run a blocking or CPU-heavy closure on the runtime's blocking pool and
//! get a `join_handle` for its result.
//!
//! ```cpp
//! auto h = eddy::spawn_blocking([path] { return read_whole_file(path); });   // plain function
//! std::string text = co_await h;                                            // async wait
//! ```
//!
//! Use it for work that would stall a runtime thread: blocking system calls (file I/O,
//! `getaddrinfo`, `waitpid`), CPU-heavy computation, and legacy libraries that block (database
//! drivers, compression).
//! A task that blocks a runtime thread stops every other task scheduled there; a blocking closure
//! only occupies a thread of its own.
//!
//! - The closure runs on a thread of the blocking pool, never on the calling thread: an elastic
//!   set of threads started on demand (at most `runtime::builder::max_blocking_threads`, 512 by
//!   default) that exit after `thread_keep_alive` (10 s) without work. When every thread is busy,
//!   closures wait in FIFO order, so a cap set low makes long closures delay the others.
//! - It is invoked once, as an lvalue, with no arguments; its value (or exception) comes out of
//!   `co_await handle`. It is taken by value and lives in the task, so captures stay alive until
//!   it has run (capture by value: the closure may run after the caller's frame is gone).
//! - `abort()` cancels the closure only before it starts (the join reports `errc::cancelled` and
//!   the closure is destroyed without running). Once running it cannot be interrupted: it runs to
//!   the end and the join still returns its value, as in Tokio.
//! - Destroying the runtime cancels the closures still queued, then waits for the running ones
//!   to return and joins the pool's threads. A closure that waits for something only the runtime's
//!   async tasks would provide therefore deadlocks shutdown: give it its own stop signal.
//! - `eddy::fs` runs its own blocking operations in a lane of the same pool instead: at most
//!   `runtime::builder::max_file_threads` at a time, back to back (detail/blocking/pool.hpp).
//!   Closures passed here never wait in that lane, nor file operations behind these closures.
//! - It can be called from the runtime's threads and from inside a blocking closure (it nests, on
//!   the same pool); elsewhere it throws `std::logic_error`. Inside a blocking closure,
//!   `eddy::spawn` and `runtime::handle::current()` reach the closure's runtime, and
//!   `runtime::block_on` is allowed (the thread is meant to block).

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/blocking/pool.hpp>
#include <eddy/detail/context.hpp>

#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace eddy {

namespace detail {

/// The coroutine of a blocking task: runs `f` on its first (and only) poll and finishes without
/// suspending (pool.hpp relies on that). `f` is moved into the frame.
template <class R, class F>
task<R> invoke_blocking(F f) {
    if constexpr (std::is_void_v<R>) {
        std::invoke(f);
        co_return;
    } else {
        co_return std::invoke(f);
    }
}

/// The calling thread's blocking pool; throws `std::logic_error` if it has none.
inline blocking_pool& current_blocking_pool() {
    blocking_pool* pool = context().blocking;
    if (pool == nullptr) {
        throw std::logic_error("eddy::spawn_blocking must be called from a thread that runs an "
                               "eddy runtime (or from a blocking closure)");
    }
    return *pool;
}

} // namespace detail

/// Runs `f()` on the blocking pool of the current runtime; see the header comment. Throws
/// `std::logic_error` when called from a thread that is neither a runtime thread nor a blocking
/// closure's thread.
template <class F>
requires std::is_invocable_v<F&>
auto spawn_blocking(F f) -> join_handle<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    static_assert(!std::is_reference_v<R>,
                  "eddy::spawn_blocking: the closure must return by value (or a pointer)");
    return detail::spawn_on(detail::current_blocking_pool(),
                            detail::invoke_blocking<R>(std::move(f)));
}

namespace detail {

/// Like `spawn_blocking`, but as a job of the pool's file lane (detail/blocking/pool.hpp): for
/// short blocking file operations, run back to back by a few threads instead of one thread per
/// closure. `f` must not wait for another file-lane job (all the lane's threads could be
/// waiting) nor for anything else but the device.
template <class F>
requires std::is_invocable_v<F&>
auto spawn_file_op(F f) -> join_handle<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    blocking_pool& pool = current_blocking_pool();
    return spawn_with(pool, invoke_blocking<R>(std::move(f)),
                      [&pool](task_header* t) { pool.spawn_file(t); });
}

} // namespace detail

} // namespace eddy
