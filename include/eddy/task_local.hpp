#pragma once
//! `eddy::task_local<T>`: a value visible to the code of one task (or part of one), across its
//! suspension points and whichever workers it runs on.
//!
//! ```cpp
//! inline eddy::task_local<std::string> request_id;
//!
//! co_await request_id.scope("req-42", handle(request));   // inside handle(): request_id.get()
//! ```
//!
//! `key.scope(value, aw)` runs `aw` inside the awaiting task with `value` bound to `key`; the
//! value lives in the scope's frame and is destroyed when `aw` finishes. Anything `aw` awaits sees
//! it (nested scopes of the same key shadow outer ones); nothing else does: tasks spawned from
//! inside do not inherit it, and neither does code after the scope. `get()` throws
//! `std::logic_error` when the key has no value here; `try_get()` returns nullptr instead.
//!
//! The binding is installed whenever the scoped operation runs (it is a combinator branch, see
//! detail/task/branch.hpp), so it follows the task across suspensions and workers at the cost of
//! two pointer writes per resumption.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/task/branch.hpp>

#include <stdexcept>
#include <utility>

namespace eddy {

template <class T>
class task_local {
public:
    task_local() noexcept = default;
    task_local(const task_local&) = delete;
    task_local& operator=(const task_local&) = delete;

    /// Runs `aw` with `value` bound to this key. See the header comment.
    template <awaitable A>
    task<await_result_t<A&&>> scope(T value, A&& aw) const {
        return run_scoped(this, std::move(value), detail::to_branch_task(std::forward<A>(aw)));
    }

    /// The value bound here (innermost scope), or nullptr.
    [[nodiscard]] T* try_get() const noexcept {
        for (detail::local_binding* b = detail::context().locals; b != nullptr; b = b->outer) {
            if (b->key == this)
                return static_cast<T*>(b->value);
        }
        return nullptr;
    }

    /// The value bound here; `std::logic_error` when there is none.
    [[nodiscard]] T& get() const {
        if (T* v = try_get())
            return *v;
        throw std::logic_error("eddy::task_local::get: no value in scope for this task");
    }

private:
    template <class R>
    static task<R> run_scoped(const task_local* key, T value, task<R> inner) {
        detail::branch_task<R> body(std::move(inner));
        detail::branch_set_ref set(1);
        detail::local_binding binding{key, &value, nullptr};
        set->bind_local(&binding);
        set->start(0, body.handle());
        while (!body.done())
            co_await set->poll();
        co_return body.take();
    }
};

} // namespace eddy
