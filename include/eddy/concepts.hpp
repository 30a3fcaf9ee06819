#pragma once
//! Concepts and traits for awaitables: what `spawn`, `block_on` and the combinators accept.

#include <eddy/config.hpp>

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace eddy {

namespace detail {

template <class T>
concept suspend_result = std::is_void_v<T> || std::is_same_v<T, bool> ||
    std::is_convertible_v<T, std::coroutine_handle<>>;

template <class A>
concept has_member_co_await = requires(A&& a) {
    std::forward<A>(a).operator co_await();
};

template <class A>
concept has_free_co_await = requires(A&& a) {
    operator co_await(std::forward<A>(a));
};

template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (has_member_co_await<A>) {
        return std::forward<A>(a).operator co_await();
    } else if constexpr (has_free_co_await<A>) {
        return operator co_await(std::forward<A>(a));
    } else {
        return std::forward<A>(a);
    }
}

} // namespace detail

/// An object with `await_ready`, `await_suspend(handle)` and `await_resume`.
template <class A>
concept awaiter = requires(A& a, std::coroutine_handle<> h) {
    { a.await_ready() } -> std::convertible_to<bool>;
    { a.await_suspend(h) } -> detail::suspend_result;
    a.await_resume();
};

/// Anything `co_await` accepts in a coroutine whose promise has no `await_transform`.
template <class A>
concept awaitable =
    awaiter<std::remove_reference_t<decltype(detail::get_awaiter(std::declval<A>()))>>;

/// The type `co_await std::declval<A>()` produces.
template <awaitable A>
using await_result_t = decltype(detail::get_awaiter(std::declval<A>()).await_resume());

} // namespace eddy
