#pragma once
//! `eddy::runtime`: owns a scheduler (and, later, the drivers) and the blocking pool, and runs
//! tasks on them. Two flavors: `multi_thread` (work-stealing workers, the default) and
//! `current_thread` (tasks run on the thread inside `block_on`).
//!
//! ```cpp
//! auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
//! int v = rt.block_on(compute());          // runs compute() as a task, waits for its value
//! auto h = rt.get_handle();                // spawn from any thread: h.spawn(work())
//! int main() { return eddy::run(async_main()); }
//! ```
//!
//! Destroying a runtime shuts it down (invariant 6): every task still alive is cancelled (its
//! frame destroyed at its suspension point), queued work is dropped, and join handles held
//! elsewhere report `errc::cancelled`. Spawns through a handle after that are cancelled at once.
//! Then it waits for the `spawn_blocking` closures already running (they cannot be interrupted;
//! queued ones are cancelled) and joins the blocking pool's threads. A runtime must not be
//! destroyed from one of its own tasks or blocking closures.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/runtime_metrics.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/current_thread.hpp>
#include <eddy/detail/scheduler/multi_thread.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/scheduler/runtime_options.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

#include <limits.h>

namespace eddy {

/// Ready-made hooks for exceptions that escape detached tasks.
namespace unhandled_exception_hooks {

/// Describes an exception for a log line: its `what()` when it is a `std::exception`.
inline std::string describe(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return fmt::format("{} ({})", ex.what(), typeid(ex).name());
    } catch (...) {
        return "an exception of a type not derived from std::exception";
    }
}

/// The default: one line on stderr, then the runtime goes on.
inline void log(task_id id, const std::exception_ptr& e) {
    fmt::print(stderr, "eddy: task {} terminated by an unhandled exception: {}\n", id.value,
               describe(e));
}

/// Logs like `log`, then aborts the process.
[[noreturn]] inline void abort(task_id id, const std::exception_ptr& e) {
    log(id, e);
    std::abort();
}

} // namespace unhandled_exception_hooks

namespace detail {

/// block_on for any flavor: spawn the awaitable as the root task, let the flavor run it to
/// completion (on this thread, or on its workers while this thread parks), return its output.
template <class A>
await_result_t<A> block_on(runtime_core& core, A&& aw) {
    using R = await_result_t<A>;
    // Blocking-pool threads may block (that is what they are for); scheduler threads may not.
    if (context().sched != nullptr) {
        throw std::logic_error("eddy: block_on called from a thread that runs a runtime's tasks "
                               "(a worker or a block_on caller); it would block that runtime: "
                               "co_await the awaitable instead");
    }
    join_handle<R> root = spawn_on(core, into_task(std::forward<A>(aw)));
    try {
        core.block_until(join_access<R>::header(root));
    } catch (...) {
        root.abort();
        throw;
    }
    if (!root.is_finished()) {
        // The runtime was shut down from another thread while we drove it: shutdown cancels the
        // root (or already did).
        throw join_error(make_error_code(errc::cancelled));
    }
    return join_access<R>::take(root);
}

} // namespace detail

/// Which scheduler a runtime uses.
enum class runtime_flavor {
    multi_thread,   ///< work-stealing workers (the default)
    current_thread, ///< every task on the thread that calls block_on
};

class runtime {
public:
    class builder;
    class handle;

    runtime(runtime&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    runtime& operator=(runtime&& other) noexcept {
        if (this != &other) {
            shutdown();
            core_ = std::exchange(other.core_, nullptr);
        }
        return *this;
    }
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;
    ~runtime() { shutdown(); }

    /// Runs `aw` as a task until it finishes and returns its value or rethrows its exception.
    /// A current-thread runtime runs its tasks on the calling thread meanwhile; a multi-thread
    /// runtime runs them on its workers while the calling thread sleeps. Throws
    /// `std::logic_error` when called from a worker or from inside another `block_on` (it would
    /// block that runtime: `co_await` instead); `spawn_blocking` closures may call it.
    template <awaitable A>
    await_result_t<A> block_on(A&& aw) {
        return detail::block_on(checked(), std::forward<A>(aw));
    }

    /// Spawns onto this runtime from any thread. See `eddy::spawn`.
    template <awaitable A>
    auto spawn(A&& aw) -> join_handle<await_result_t<A>> {
        return detail::spawn_on(checked(), detail::into_task(std::forward<A>(aw)));
    }

    [[nodiscard]] handle get_handle() const;

    /// Cancels every task, waits for running blocking closures, joins the runtime's threads and
    /// releases its resources; the destructor calls it.
    void shutdown() noexcept {
        if (core_ == nullptr)
            return;
        if (detail::context().runtime == core_) {
            std::fputs("eddy: a runtime cannot be shut down from one of its own threads (a task "
                       "or a blocking closure)\n",
                       stderr);
            std::abort();
        }
        core_->shutdown();
        core_->blocking().shutdown();
        std::exchange(core_, nullptr)->release();
    }

private:
    explicit runtime(detail::runtime_core* core) noexcept : core_(core) {}

    detail::runtime_core& checked() const {
        if (core_ == nullptr)
            throw std::logic_error("eddy::runtime: moved-from or shut down");
        return *core_;
    }

    detail::runtime_core* core_;
};

/// A cheap, copyable reference to a runtime, usable from any thread. Outliving the runtime is
/// safe: spawns through it are then cancelled at once.
class runtime::handle {
public:
    handle(const handle& other) noexcept : core_(other.core_) { core_->retain(); }
    handle& operator=(const handle& other) noexcept {
        if (this != &other) {
            other.core_->retain();
            core_->release();
            core_ = other.core_;
        }
        return *this;
    }
    ~handle() { core_->release(); }

    /// The runtime of the calling thread (a worker, a block_on caller, a blocking-pool thread);
    /// throws `std::logic_error` on any other thread.
    static handle current() {
        detail::runtime_core* core = detail::context().runtime;
        if (core == nullptr) {
            throw std::logic_error("eddy::runtime::handle::current: no runtime on this thread");
        }
        return handle(core);
    }

    /// Spawns onto the runtime from any thread.
    template <awaitable A>
    auto spawn(A&& aw) const -> join_handle<await_result_t<A>> {
        return detail::spawn_on(*core_, detail::into_task(std::forward<A>(aw)));
    }

    template <class F>
    requires detail::awaitable_factory<F>
    auto spawn(F&& f) const -> join_handle<await_result_t<std::invoke_result_t<std::decay_t<F>&>>> {
        return detail::spawn_on(*core_, detail::invoke_into_task(std::forward<F>(f)));
    }

    /// `runtime::block_on` through a handle, from a thread that runs no runtime.
    template <awaitable A>
    await_result_t<A> block_on(A&& aw) const {
        return detail::block_on(*core_, std::forward<A>(aw));
    }

    /// A snapshot of the runtime's counters. Any thread, any time.
    [[nodiscard]] runtime_metrics metrics() const { return core_->metrics(); }

    [[nodiscard]] runtime_flavor flavor() const noexcept {
        return dynamic_cast<const detail::multi_thread*>(core_) != nullptr
                   ? runtime_flavor::multi_thread
                   : runtime_flavor::current_thread;
    }

private:
    friend class runtime;
    explicit handle(detail::runtime_core* core) noexcept : core_(core) { core_->retain(); }

    detail::runtime_core* core_;
};

inline runtime::handle runtime::get_handle() const {
    return handle(&checked());
}

/// Configures and builds a runtime.
class runtime::builder {
public:
    /// The default: a work-stealing runtime with `worker_threads` workers.
    builder() { options_.unhandled_exception = &unhandled_exception_hooks::log; }

    /// A work-stealing runtime (the default flavor).
    static builder multi_thread() { return builder(); }

    /// A runtime whose tasks all run on the thread that calls `block_on`.
    static builder current_thread() {
        builder b;
        b.flavor_ = runtime_flavor::current_thread;
        return b;
    }

    /// Workers of a multi-thread runtime (default: one per hardware thread). At least 1.
    builder& worker_threads(std::uint32_t n) {
        if (n == 0)
            throw std::invalid_argument("eddy: worker_threads must be >= 1");
        options_.worker_threads = n;
        return *this;
    }

    /// What a detached task's escaping exception is given to (default:
    /// `unhandled_exception_hooks::log`). Called on the thread that ran the task; must not throw.
    builder& unhandled_exception(std::function<void(task_id, std::exception_ptr)> hook) {
        options_.unhandled_exception = std::move(hook);
        return *this;
    }

    /// Every `n` scheduler ticks the inject queue (remote spawns) is served before the local
    /// queue. Must be at least 1.
    builder& global_queue_interval(std::uint32_t n) {
        if (n == 0)
            throw std::invalid_argument("eddy: global_queue_interval must be >= 1");
        options_.global_queue_interval = n;
        return *this;
    }

    /// Tasks polled between turns of the drivers. Must be at least 1.
    builder& event_interval(std::uint32_t n) {
        if (n == 0)
            throw std::invalid_argument("eddy: event_interval must be >= 1");
        options_.event_interval = n;
        return *this;
    }

    /// Cap on the threads of the `spawn_blocking` pool (default 512). Must be at least 1.
    builder& max_blocking_threads(std::size_t n) {
        if (n == 0)
            throw std::invalid_argument("eddy: max_blocking_threads must be >= 1");
        options_.max_blocking_threads = n;
        return *this;
    }

    /// Cap on the blocking-pool threads that run file operations at once (the `eddy::fs`
    /// operations that are not native io_uring ones; default: the number of worker threads, at
    /// least 4). Those operations queue in FIFO
    /// order and these threads run them back to back, instead of one thread per operation. Raise
    /// it for file systems whose operations wait long (NFS, FUSE), where more of them in flight
    /// pay off. The threads count towards `max_blocking_threads`. Must be at least 1.
    builder& max_file_threads(std::size_t n) {
        if (n == 0)
            throw std::invalid_argument("eddy: max_file_threads must be >= 1");
        options_.max_file_threads = n;
        return *this;
    }

    /// How long an idle blocking-pool thread waits for work before it exits (default 10 s).
    builder& thread_keep_alive(std::chrono::nanoseconds d) {
        if (d < std::chrono::nanoseconds::zero())
            throw std::invalid_argument("eddy: thread_keep_alive must not be negative");
        options_.thread_keep_alive = d;
        return *this;
    }

    /// Name of the threads the runtime starts (truncated to 15 bytes).
    builder& thread_name(std::string name) {
        options_.thread_name = std::move(name);
        return *this;
    }

    /// Stack size in bytes of the threads the runtime starts (0: the system default).
    builder& thread_stack_size(std::size_t bytes) {
        if (bytes != 0 && bytes < static_cast<std::size_t>(PTHREAD_STACK_MIN)) {
            throw std::invalid_argument("eddy: thread_stack_size is below PTHREAD_STACK_MIN");
        }
        options_.thread_stack_size = bytes;
        return *this;
    }

    /// Start with the clock paused (see eddy/time.hpp): timers fire as the clock auto-advances
    /// to them, instantly. Current-thread flavor only (`build()` throws `std::invalid_argument`
    /// otherwise).
    builder& start_paused(bool paused) {
        options_.start_paused = paused;
        return *this;
    }

    /// The I/O driver's backend (default `automatic`; see eddy/io_backend.hpp). A forced
    /// `io_uring` that cannot start makes `build()` throw `std::system_error` saying why.
    builder& io_backend(eddy::io_backend backend) {
        options_.io = backend;
        return *this;
    }

    /// How long a worker that runs out of work keeps polling the I/O driver before it sleeps
    /// (default 50 µs; 0 turns it off). A reply that arrives meanwhile is handled without the
    /// cost of a sleep and a cross-CPU wake-up, at the price of up to that much CPU per idle
    /// period. The worker yields between polls and stops early once a yield ran another thread,
    /// so the spin gives way to a peer that needs the CPU (on 2 cores shared with a load client,
    /// it took a 1-connection echo server from 15k to 45-50k msgs/s).
    builder& park_spin(std::chrono::nanoseconds d) {
        if (d < std::chrono::nanoseconds::zero())
            throw std::invalid_argument("eddy: park_spin must not be negative");
        options_.park_spin = d;
        return *this;
    }

    /// Called on each thread the runtime starts, before it runs anything. Must not throw.
    builder& on_thread_start(std::function<void()> f) {
        options_.on_thread_start = std::move(f);
        return *this;
    }

    /// Called on each thread the runtime started, just before it exits. Must not throw.
    builder& on_thread_stop(std::function<void()> f) {
        options_.on_thread_stop = std::move(f);
        return *this;
    }

    /// Starts the runtime (a multi-thread runtime starts its workers here). Throws
    /// `std::system_error` if a thread cannot be started.
    [[nodiscard]] runtime build() const {
        if (flavor_ == runtime_flavor::current_thread) {
            return runtime(new detail::current_thread(options_));
        }
        if (options_.start_paused) {
            throw std::invalid_argument(
                "eddy: start_paused requires a current-thread runtime (builder::current_thread())");
        }
        return runtime(new detail::multi_thread(options_));
    }

private:
    detail::runtime_options options_;
    runtime_flavor flavor_ = runtime_flavor::multi_thread;
};

/// Builds a default (multi-thread) runtime, runs `aw` to completion on it, shuts it down, and
/// returns the value. `int main() { return eddy::run(async_main()); }`
template <awaitable A>
await_result_t<A> run(A&& aw) {
    return runtime::builder().build().block_on(std::forward<A>(aw));
}

} // namespace eddy
