#pragma once
//! `eddy::task<T>`: the lazy coroutine type of eddy.
//!
//! A task does nothing until it is awaited (`co_await std::move(t)` or `co_await make_task()`)
//! or spawned (`eddy::spawn`). Awaiting runs it on the awaiting thread, inside the awaiter's
//! poll, and resumes the awaiter when it finishes; the value is returned and an exception thrown
//! by the task is rethrown in the awaiter. Control passes through the thread's trampoline (see
//! detail/context.hpp), so chains of awaits of any depth run in constant stack.
//!
//! Tasks are move-only. Destroying a task that was never awaited destroys its frame (running the
//! destructors of its parameters). A task may be awaited once.

#include <eddy/config.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/task/header.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace eddy {

template <class T = void>
class task;

namespace detail {

class promise_base {
public:
    promise_base() noexcept = default;
    promise_base(const promise_base&) = delete;
    promise_base& operator=(const promise_base&) = delete;

    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t /*size*/) noexcept {
        deallocate_frame(frame);
    }

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
            std::coroutine_handle<> next = self.promise().continuation_;
            // A spawned task has no continuation: its poller sees done() and completes it.
            if (!next)
                return std::noop_coroutine();
            return transfer_to(next);
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }
    [[nodiscard]] const std::exception_ptr& exception() const noexcept { return exception_; }

protected:
    void rethrow_if_exception() {
        if (exception_)
            std::rethrow_exception(std::exchange(exception_, nullptr));
    }

private:
    std::coroutine_handle<> continuation_;
    std::exception_ptr exception_;
};

template <class T>
class promise final : public promise_base {
public:
    task<T> get_return_object() noexcept;

    template <class U = T>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(v));
    }

    /// Moves the value out (or rethrows). Called once, by the awaiter or the join handle.
    T take() {
        rethrow_if_exception();
        EDDY_ASSERT(value_.has_value());
        return std::move(*value_);
    }

    /// The value, left in place (the task finished without an exception).
    const T& peek() const noexcept {
        EDDY_ASSERT(value_.has_value());
        return *value_;
    }

private:
    std::optional<T> value_;
};

template <>
class promise<void> final : public promise_base {
public:
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() { rethrow_if_exception(); }
};

} // namespace detail

template <class T>
class [[nodiscard]] task {
    static_assert(!std::is_reference_v<T>, "task<T&> is not supported; return a pointer");

public:
    using promise_type = detail::promise<T>;
    using value_type = T;

    task() noexcept = default;
    explicit task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
    task(task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (handle_)
                handle_.destroy();
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        if (handle_)
            handle_.destroy();
    }

    /// False for a default-constructed or moved-from task.
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

    struct awaiter {
        std::coroutine_handle<promise_type> handle;

        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            handle.promise().set_continuation(awaiting);
            return detail::transfer_to(handle);
        }
        T await_resume() { return handle.promise().take(); }
    };

    /// Runs the task to completion inside the awaiting coroutine and yields its value. Suspends
    /// until the task finishes; resumes on the thread that finished it (the awaiter's own poll).
    /// If the awaiting coroutine is destroyed meanwhile, the task is destroyed with it.
    awaiter operator co_await() && {
        if (!handle_)
            throw std::logic_error("eddy::task: awaiting an empty (moved-from) task");
        if (handle_.done())
            throw std::logic_error("eddy::task: awaiting a task twice");
        return awaiter{handle_};
    }

    /// Gives up ownership of the coroutine (used by spawn).
    [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
        return std::exchange(handle_, nullptr);
    }

private:
    std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}

inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}

} // namespace detail
} // namespace eddy
