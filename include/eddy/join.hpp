#pragma once
//! `eddy::join`, `try_join`, `join_all`, `try_join_all`: run several awaitables concurrently
//! inside the current task and wait for all of them.
//!
//! ```cpp
//! auto [user, orders] = co_await eddy::join(fetch_user(id), fetch_orders(id));
//! std::vector<int> sizes = co_await eddy::join_all(std::move(requests));
//! eddy::result<std::tuple<A, B>> r = co_await eddy::try_join(step_a(), step_b());
//! ```
//!
//! Nothing is spawned: the branches run in the awaiting task's poll, interleaving at their
//! suspension points, each woken on its own. The results come back in argument order (`void`
//! branches give `std::monostate`). If a branch throws, the others are cancelled (their frames
//! destroyed at their suspension points) and the exception is rethrown once they are gone.
//!
//! `try_join` / `try_join_all` also stop at the first branch whose value is an `eddy::result`
//! holding an error: the others are cancelled and that error is the result. Their output is
//! `result<std::tuple<...>>` / `result<std::vector<...>>` of the branches' unwrapped values.
//!
//! Awaitables are taken as `timeout` takes them: movable temporaries by value, lvalues and
//! non-movable temporaries by reference (await the join in the same expression then).
//! Cancelling the awaiting task cancels every branch.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/task/branch.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace eddy {

namespace detail {

template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

/// What `try_join` keeps of a branch's value: the value inside a result, or the value itself.
template <class T>
struct try_value {
    using type = value_or_monostate_t<T>;
};
template <class U>
struct try_value<result<U>> {
    using type = value_or_monostate_t<U>;
};
template <class T>
using try_value_t = typename try_value<T>::type;

/// True when branch `b` finished with an `eddy::result` holding an error.
template <class T>
bool holds_error(branch_task<T>& b) {
    if constexpr (is_result<T>::value) {
        return !b.failed() && !b.peek().has_value();
    } else {
        return false;
    }
}

template <class T>
try_value_t<T> take_try_value(branch_task<T>& b) {
    if constexpr (is_result<T>::value) {
        T r = b.take();
        if constexpr (std::is_void_v<typename T::value_type>) {
            return {};
        } else {
            return std::move(*r);
        }
    } else {
        return take_value(b);
    }
}

/// Applies `f` to the `i`-th element of a tuple (a runtime index).
template <class Tuple, class F, std::size_t... I>
void visit_at(Tuple& t, std::size_t i, F&& f, std::index_sequence<I...>) {
    ((I == i ? (f(std::get<I>(t)), 0) : 0), ...);
}
template <class Tuple, class F>
void visit_at(Tuple& t, std::size_t i, F&& f) {
    visit_at(t, i, std::forward<F>(f), std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

enum class join_policy { all, first_error };

/// Runs the bodies until all finished, or until the first failure (an exception; with
/// `first_error`, also a result holding an error). Returns the failed branch, or none.
template <join_policy Policy, class Bodies>
task<std::size_t> run_join(Bodies& bodies, std::size_t n, branch_set& set) {
    std::size_t remaining = n;
    while (remaining > 0) {
        co_await set.poll();
        for (std::size_t i; (i = set.pop_done()) != branch_set::none;) {
            --remaining;
            bool failed = false;
            auto check = [&](auto& body) {
                failed = body.failed();
                if constexpr (Policy == join_policy::first_error)
                    failed = failed || holds_error(body);
            };
            if constexpr (requires { bodies[i]; }) {
                check(bodies[i]);
            } else {
                visit_at(bodies, i, check);
            }
            if (failed)
                co_return i;
        }
    }
    co_return branch_set::none;
}

template <class... T>
task<std::tuple<value_or_monostate_t<T>...>> join_tasks(task<T>... ts) {
    constexpr std::size_t n = sizeof...(T);
    std::tuple<branch_task<T>...> bodies(branch_task<T>(std::move(ts))...);
    branch_set_ref set(n);
    start_all(*set, bodies);
    const std::size_t failed = co_await run_join<join_policy::all>(bodies, n, *set);
    if (failed != branch_set::none)
        visit_at(bodies, failed, [](auto& body) { body.rethrow(); });
    co_return std::apply([](auto&... b) { return std::tuple(take_value(b)...); }, bodies);
}

template <class... T>
task<result<std::tuple<try_value_t<T>...>>> try_join_tasks(task<T>... ts) {
    constexpr std::size_t n = sizeof...(T);
    std::tuple<branch_task<T>...> bodies(branch_task<T>(std::move(ts))...);
    branch_set_ref set(n);
    start_all(*set, bodies);
    const std::size_t failed = co_await run_join<join_policy::first_error>(bodies, n, *set);
    if (failed != branch_set::none) {
        std::error_code ec;
        visit_at(bodies, failed, [&](auto& body) {
            using B = std::remove_reference_t<decltype(body)>;
            if constexpr (is_result<typename B::value_type>::value) {
                if (!body.failed()) {
                    ec = body.peek().error();
                    return;
                }
            }
            body.rethrow();
        });
        co_return ec;
    }
    co_return std::apply([](auto&... b) { return std::tuple(take_try_value(b)...); }, bodies);
}

/// The bodies of a `join_all` / `try_join_all`, all finished unless one failed (`failed`).
template <join_policy Policy, class T>
task<std::size_t> run_join_all(std::vector<branch_task<T>>& bodies) {
    const std::size_t n = bodies.size();
    if (n == 0)
        co_return branch_set::none;
    branch_set_ref set(n);
    start_all(*set, bodies);
    co_return co_await run_join<Policy>(bodies, n, *set);
    // Leaving closes the set; the caller destroys unfinished bodies (after, as it must).
}

template <class T>
std::vector<branch_task<T>> branch_tasks_of(std::vector<task<T>>& ts) {
    std::vector<branch_task<T>> bodies;
    bodies.reserve(ts.size());
    for (auto& t : ts)
        bodies.emplace_back(std::move(t));
    return bodies;
}

template <class T>
task<std::vector<value_or_monostate_t<T>>> join_all_tasks(std::vector<task<T>> ts) {
    std::vector<branch_task<T>> bodies = branch_tasks_of(ts);
    const std::size_t failed = co_await run_join_all<join_policy::all>(bodies);
    if (failed != branch_set::none)
        bodies[failed].rethrow(); // leaving cancels the rest
    std::vector<value_or_monostate_t<T>> out;
    out.reserve(bodies.size());
    for (auto& b : bodies)
        out.push_back(take_value(b));
    co_return out;
}

template <class T>
task<result<std::vector<try_value_t<T>>>> try_join_all_tasks(std::vector<task<T>> ts) {
    std::vector<branch_task<T>> bodies = branch_tasks_of(ts);
    const std::size_t failed = co_await run_join_all<join_policy::first_error>(bodies);
    if (failed != branch_set::none) {
        if constexpr (is_result<T>::value) {
            if (!bodies[failed].failed())
                co_return bodies[failed].peek().error();
        }
        bodies[failed].rethrow();
    }
    std::vector<try_value_t<T>> out;
    out.reserve(bodies.size());
    for (auto& b : bodies)
        out.push_back(take_try_value(b));
    co_return out;
}

template <class A>
using branch_value_t = await_result_t<A&&>;

} // namespace detail

/// Awaits every awaitable concurrently; their values as a tuple. See the header comment.
template <awaitable... A>
task<std::tuple<detail::value_or_monostate_t<detail::branch_value_t<A>>...>> join(A&&... aws) {
    return detail::join_tasks(detail::to_branch_task(std::forward<A>(aws))...);
}

/// Like `join`, but the first error (an exception, or a result holding an error) cancels the
/// rest. See the header comment.
template <awaitable... A>
task<result<std::tuple<detail::try_value_t<detail::branch_value_t<A>>...>>> try_join(A&&... aws) {
    return detail::try_join_tasks(detail::to_branch_task(std::forward<A>(aws))...);
}

/// Awaits every awaitable of `aws` concurrently; their values in order.
template <awaitable A>
task<std::vector<detail::value_or_monostate_t<detail::branch_value_t<A>>>>
join_all(std::vector<A> aws) {
    using T = detail::branch_value_t<A>;
    std::vector<task<T>> ts;
    ts.reserve(aws.size());
    for (auto& aw : aws)
        ts.push_back(detail::into_task(std::move(aw)));
    return detail::join_all_tasks(std::move(ts));
}

/// `join_all` that stops at the first error (see `try_join`).
template <awaitable A>
task<result<std::vector<detail::try_value_t<detail::branch_value_t<A>>>>>
try_join_all(std::vector<A> aws) {
    using T = detail::branch_value_t<A>;
    std::vector<task<T>> ts;
    ts.reserve(aws.size());
    for (auto& aw : aws)
        ts.push_back(detail::into_task(std::move(aw)));
    return detail::try_join_all_tasks(std::move(ts));
}

} // namespace eddy
