#pragma once
//! `eddy::runtime`: owns the scheduler (and, later, the drivers) and runs tasks on it.
//!
//! ```cpp
//! auto rt = eddy::runtime::builder::current_thread().build();
//! int v = rt.block_on(compute());          // runs tasks on this thread until compute() is done
//! auto h = rt.get_handle();                // spawn from any thread: h.spawn(work())
//! int main() { return eddy::run(async_main()); }
//! ```
//!
//! Destroying a runtime shuts it down (invariant 6): every task still alive is cancelled (its
//! frame destroyed at its suspension point), queued work is dropped, and join handles held
//! elsewhere report `errc::cancelled`. Spawns through a handle after that are cancelled at once.
//! A runtime must not be destroyed from one of its own tasks.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/scheduler/current_thread.hpp>
#include <eddy/detail/scheduler/runtime_options.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

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

class runtime {
public:
    class builder;
    class handle;

    runtime(runtime&& other) noexcept : sched_(std::exchange(other.sched_, nullptr)) {}
    runtime& operator=(runtime&& other) noexcept {
        if (this != &other) {
            shutdown();
            sched_ = std::exchange(other.sched_, nullptr);
        }
        return *this;
    }
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;
    ~runtime() { shutdown(); }

    /// Runs `aw` as a task and drives the runtime on the calling thread until it finishes;
    /// returns its value or rethrows its exception. Throws `std::logic_error` when called from a
    /// thread that is already running a runtime (it would deadlock: `co_await` instead).
    template <awaitable A>
    await_result_t<A> block_on(A&& aw);

    /// Spawns onto this runtime from any thread. See `eddy::spawn`.
    template <awaitable A>
    auto spawn(A&& aw) -> join_handle<await_result_t<A>> {
        return detail::spawn_on(*sched_, detail::into_task(std::forward<A>(aw)));
    }

    [[nodiscard]] handle get_handle() const noexcept;

    /// Cancels every task and releases the runtime's resources; the destructor calls it.
    void shutdown() noexcept {
        if (sched_ == nullptr)
            return;
        if (detail::context().sched == sched_) {
            std::fputs("eddy: a runtime cannot be shut down from one of its own tasks\n", stderr);
            std::abort();
        }
        sched_->shutdown();
        std::exchange(sched_, nullptr)->release();
    }

private:
    explicit runtime(detail::current_thread* sched) noexcept : sched_(sched) {}

    detail::current_thread* sched_;
};

/// A cheap, copyable reference to a runtime, usable from any thread. Outliving the runtime is
/// safe: spawns through it are then cancelled at once.
class runtime::handle {
public:
    handle(const handle& other) noexcept : sched_(other.sched_) { sched_->retain(); }
    handle& operator=(const handle& other) noexcept {
        if (this != &other) {
            other.sched_->retain();
            sched_->release();
            sched_ = other.sched_;
        }
        return *this;
    }
    ~handle() { sched_->release(); }

    /// The handle of the runtime running on this thread; throws `std::logic_error` elsewhere.
    static handle current() {
        auto* s = dynamic_cast<detail::current_thread*>(detail::context().sched);
        if (s == nullptr) {
            throw std::logic_error("eddy::runtime::handle::current: no runtime on this thread");
        }
        return handle(s);
    }

    /// Spawns onto the runtime from any thread.
    template <awaitable A>
    auto spawn(A&& aw) const -> join_handle<await_result_t<A>> {
        return detail::spawn_on(*sched_, detail::into_task(std::forward<A>(aw)));
    }

    template <class F>
    requires detail::awaitable_factory<F>
    auto spawn(F&& f) const -> join_handle<await_result_t<std::invoke_result_t<std::decay_t<F>&>>> {
        return detail::spawn_on(*sched_, detail::invoke_into_task(std::forward<F>(f)));
    }

private:
    friend class runtime;
    explicit handle(detail::current_thread* s) noexcept : sched_(s) { sched_->retain(); }

    detail::current_thread* sched_;
};

inline runtime::handle runtime::get_handle() const noexcept {
    return handle(sched_);
}

/// Configures and builds a runtime.
class runtime::builder {
public:
    /// A runtime whose tasks all run on the thread that calls `block_on`.
    static builder current_thread() { return builder(); }

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

    [[nodiscard]] runtime build() const { return runtime(new detail::current_thread(options_)); }

private:
    builder() { options_.unhandled_exception = &unhandled_exception_hooks::log; }

    detail::runtime_options options_;
};

template <awaitable A>
await_result_t<A> runtime::block_on(A&& aw) {
    using R = await_result_t<A>;
    if (sched_ == nullptr)
        throw std::logic_error("eddy::runtime::block_on: runtime is moved-from");
    if (detail::context().sched != nullptr) {
        throw std::logic_error("eddy::runtime::block_on called from a thread that is running a "
                               "runtime; co_await the awaitable instead");
    }
    join_handle<R> root = detail::spawn_on(*sched_, detail::into_task(std::forward<A>(aw)));
    try {
        sched_->block_until(detail::join_access<R>::header(root));
    } catch (...) {
        root.abort();
        throw;
    }
    return detail::join_access<R>::take(root);
}

/// Builds a default runtime, runs `aw` to completion on it, shuts it down, and returns the value.
/// `int main() { return eddy::run(async_main()); }`
template <awaitable A>
await_result_t<A> run(A&& aw) {
    return runtime::builder::current_thread().build().block_on(std::forward<A>(aw));
}

} // namespace eddy
