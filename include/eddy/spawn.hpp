#pragma once
//! `eddy::spawn`: start a task on the current runtime and get a `join_handle` for it.
//!
//! `spawn` accepts a `task<T>` (which becomes the spawned task itself: one allocation), any other
//! awaitable (wrapped in a task), or a callable returning an awaitable. Prefer the callable form
//! for lambdas with captures: `spawn([x] () -> task<> { ... })` keeps the lambda alive inside the
//! task, whereas `spawn([&x] () -> task<> { ... }())` creates a coroutine whose captures die at the
//! end of the statement (C++ Core Guidelines CP.51). Everything is taken by value.
//!
//! The task starts running on the runtime's threads; `spawn` never runs it inline. From a thread
//! that runs no runtime, use `runtime::handle::spawn`.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/raw_task.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace eddy {

namespace detail {

template <class T>
struct join_access {
    static join_handle<T> make(task_header* t) noexcept { return join_handle<T>(t); }
    static task_header* header(const join_handle<T>& h) noexcept { return h.task_; }
    /// Output of a finished task (rethrows; `join_error` if cancelled).
    static T take(join_handle<T>& h) {
        h.check_joinable();
        EDDY_ASSERT(h.is_finished());
        return h.take_output();
    }
    /// Marks a finished task's outcome as looked at (no report to the unhandled-exception hook).
    static void mark_taken(join_handle<T>& h) noexcept { h.taken_ = true; }
};

inline atomic<std::uint64_t> next_task_id{1};

/// Makes `t` a task of `sched` and hands its header to `submit` (which queues it, or cancels it
/// if `sched` is shut down), as `sched.spawn` would.
template <class T, class Submit>
join_handle<T> spawn_with(scheduler& sched, task<T> t, Submit submit) {
    std::coroutine_handle<promise<T>> h = t.release();
    if (!h)
        throw std::logic_error("eddy::spawn: the task is empty (moved-from)");
    task_header* hdr = task_header::from_frame(h.address());
    EDDY_ASSERT(hdr->frame() == h.address());
    EDDY_ASSERT(!hdr->spawned());
    hdr->vtable = &task_vtable_for<promise<T>>; // from now on spawned(): owned by refcount
    hdr->state.store_initial(task_state::initial);
    hdr->sched = &sched;
    hdr->resume_point = h;
    // ORDERING: ids only need to be unique.
    hdr->set_id(next_task_id.fetch_add(1, memory_order_relaxed));
    sched.retain();
    submit(hdr);
    return join_access<T>::make(hdr);
}

template <class T>
join_handle<T> spawn_on(scheduler& sched, task<T> t) {
    return spawn_with(sched, std::move(t), [&sched](task_header* hdr) { sched.spawn(hdr); });
}

/// Wraps any awaitable in a task (a task is passed through unchanged).
template <class A>
auto into_task(A&& aw) {
    using D = std::remove_cvref_t<A>;
    using R = await_result_t<D>;
    if constexpr (std::is_same_v<D, task<R>>) {
        return D(std::forward<A>(aw));
    } else if constexpr (awaiter<D>) {
        // Awaited in place: GCC 12 would otherwise move an xvalue operand of co_await into a
        // second copy in the frame.
        return [](D a) -> task<R> { co_return co_await a; }(std::forward<A>(aw));
    } else {
        return [](D a) -> task<R> { co_return co_await std::move(a); }(std::forward<A>(aw));
    }
}

/// Wraps a callable that returns an awaitable: the callable lives in the task's frame.
template <class F>
auto invoke_into_task(F&& f) {
    using D = std::decay_t<F>;
    using R = await_result_t<std::invoke_result_t<D&>>;
    return [](D fn) -> task<R> { co_return co_await std::invoke(fn); }(std::forward<F>(f));
}

template <class F>
concept awaitable_factory = !awaitable<F> && std::is_invocable_v<std::decay_t<F>&> &&
                            awaitable<std::invoke_result_t<std::decay_t<F>&>>;

inline scheduler& current_scheduler(const char* caller) {
    scheduler* s = context().runtime;
    if (s == nullptr) {
        throw std::logic_error(std::string(caller) +
                               " must be called from a thread that runs an eddy runtime; from "
                               "other threads use runtime::handle::spawn");
    }
    return *s;
}

} // namespace detail

/// Spawns `aw` on the current runtime. Throws `std::logic_error` outside a runtime.
template <awaitable A>
auto spawn(A&& aw) -> join_handle<await_result_t<A>> {
    return detail::spawn_on(detail::current_scheduler("eddy::spawn"),
                            detail::into_task(std::forward<A>(aw)));
}

/// Spawns the awaitable `f()` returns, keeping `f` (and its captures) alive inside the task.
template <class F>
requires detail::awaitable_factory<F>
auto spawn(F&& f) -> join_handle<await_result_t<std::invoke_result_t<std::decay_t<F>&>>> {
    return detail::spawn_on(detail::current_scheduler("eddy::spawn"),
                            detail::invoke_into_task(std::forward<F>(f)));
}

} // namespace eddy
