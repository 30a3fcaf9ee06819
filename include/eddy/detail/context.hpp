#pragma once
//! Per-thread runtime context: which scheduler this thread runs for, which task it is polling,
//! and the trampoline that resumes coroutines one after another.
//!
//! The trampoline replaces symmetric transfer. `task<T>` hands control to the awaited coroutine
//! (and back to its awaiter at the end) by storing it in `next` and returning to the loop in
//! `run_trampoline`, which resumes it. The stack therefore stays flat however deep the chain of
//! awaits, on every compiler and optimisation level: GCC only turns symmetric transfer into a tail
//! call at -O2 without sanitizers, so a debug or ASan build would overflow on long chains.
//! Outside a trampoline (a task awaited from a foreign coroutine type), `task<T>` falls back to
//! symmetric transfer.

#include <eddy/config.hpp>

#include <coroutine>
#include <cstdint>
#include <utility>

namespace eddy::detail {

class scheduler;
class runtime_core;
class blocking_pool;
struct resumable;
struct local_binding;

struct thread_context {
    scheduler* sched = nullptr;        ///< the scheduler whose queues this thread owns, if any
    runtime_core* runtime = nullptr;   ///< the runtime `spawn` and `handle::current()` use here
    blocking_pool* blocking = nullptr; ///< the runtime's spawn_blocking pool, on its threads
    resumable* task = nullptr;         ///< the task (or combinator branch) being polled here
    std::coroutine_handle<> next;      ///< trampoline: the coroutine to resume next
    bool in_trampoline = false;
    std::uint32_t budget = UINT32_MAX; ///< cooperative budget of the current poll (see coop.hpp)
    std::uint32_t worker_index = 0;    ///< picks this thread's shard of per-worker structures
    local_binding* locals = nullptr;   ///< task-local values of the code running now
};

/// One `task_local` value in scope: a key, the value, and the binding it shadows.
struct local_binding {
    const void* key = nullptr;
    void* value = nullptr;
    local_binding* outer = nullptr;
};

inline thread_local thread_context tls_context;

inline thread_context& context() noexcept {
    return tls_context;
}

/// Resumes `h`, then whatever it transferred control to, until the chain suspends for real.
inline void run_trampoline(std::coroutine_handle<> h) noexcept {
    thread_context& ctx = context();
    const bool outer = !std::exchange(ctx.in_trampoline, true);
    EDDY_ASSERT(!ctx.next);
    ctx.next = h;
    while (ctx.next) {
        std::exchange(ctx.next, nullptr).resume();
    }
    if (outer)
        ctx.in_trampoline = false;
}

/// From an `await_suspend`: arrange for `h` to run next. Returns what `await_suspend` returns.
inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> h) noexcept {
    thread_context& ctx = context();
    if (ctx.in_trampoline) {
        EDDY_ASSERT(!ctx.next);
        ctx.next = h;
        return std::noop_coroutine();
    }
    return h;
}

} // namespace eddy::detail
