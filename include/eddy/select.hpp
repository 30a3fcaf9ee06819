#pragma once
//! `eddy::select`, `select_biased`, `race`: run several awaitables concurrently inside the
//! current task; the first to finish wins and the others are cancelled.
//!
//! ```cpp
//! auto r = co_await eddy::select(rx.recv(), eddy::sleep(1s));
//! if (r.index() == 0) handle(std::get<0>(r)); else give_up();
//! auto [i, reply] = co_await eddy::race(std::move(replicas));   // the fastest of N alike
//! ```
//!
//! `select` returns a `std::variant` with one alternative per branch, in argument order (`void`
//! branches give `std::monostate`); `index()` says which won. The losers are cancelled (their
//! frames destroyed at their suspension points, which withdraws whatever they waited on) before
//! `select` returns; a loser that never got to run is destroyed unstarted. If the winner threw,
//! `select` rethrows after cancelling the losers.
//!
//! Fairness: `select` starts (and later re-polls) its branches from a random one each time, so a
//! branch that is always ready does not always win; `select_biased` goes in argument order.
//! At most one branch completes: after one finishes, no other is resumed. So a branch that is a
//! cancel-safe operation (a channel `recv`, whose message stays queued until the receiver
//! resumes) loses nothing when it loses.
//!
//! `race(std::vector<A>)` is `select` over any number of awaitables of one type; it returns
//! `std::pair<std::size_t, T>`: the winner's index and value.
//!
//! Awaitables are taken as `timeout` takes them (movable temporaries by value, lvalues and
//! non-movable temporaries by reference).

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/task/branch.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace eddy {

namespace detail {

/// A cheap per-thread random start for select's fairness.
inline std::size_t random_start(std::size_t n) noexcept {
    static thread_local std::uint32_t state = 0x9E3779B9U;
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return static_cast<std::size_t>((std::uint64_t{state} * n) >> 32);
}

/// Polls until one branch finished; returns its index.
inline task<std::size_t> run_select(branch_set& set, bool biased) {
    const std::size_t n = set.size();
    for (;;) {
        const std::size_t first = biased ? 0 : random_start(n);
        const std::size_t winner = co_await set.poll(first, true);
        if (winner != branch_set::none)
            co_return winner;
    }
}

template <class... T>
task<std::variant<value_or_monostate_t<T>...>> select_tasks(bool biased, task<T>... ts) {
    constexpr std::size_t n = sizeof...(T);
    using output = std::variant<value_or_monostate_t<T>...>;
    std::tuple<branch_task<T>...> bodies(branch_task<T>(std::move(ts))...);
    branch_set_ref set(n);
    start_all(*set, bodies);
    const std::size_t winner = co_await run_select(*set, biased);
    std::optional<output> out;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((I == winner ? (out.emplace(std::in_place_index<I>, take_value(std::get<I>(bodies))), 0)
                      : 0),
         ...);
    }
    (std::make_index_sequence<n>{});
    co_return std::move(*out);
}

template <class T>
task<std::pair<std::size_t, value_or_monostate_t<T>>> race_tasks(std::vector<task<T>> ts) {
    if (ts.empty())
        throw std::invalid_argument("eddy::race: no awaitables to race");
    std::vector<branch_task<T>> bodies;
    bodies.reserve(ts.size());
    for (auto& t : ts)
        bodies.emplace_back(std::move(t));
    branch_set_ref set(bodies.size());
    start_all(*set, bodies);
    const std::size_t winner = co_await run_select(*set, false);
    co_return std::pair<std::size_t, value_or_monostate_t<T>>(winner, take_value(bodies[winner]));
}

} // namespace detail

/// The first of the awaitables to finish; the others are cancelled. See the header comment.
template <awaitable... A>
task<std::variant<detail::value_or_monostate_t<await_result_t<A&&>>...>> select(A&&... aws) {
    return detail::select_tasks(false, detail::to_branch_task(std::forward<A>(aws))...);
}

/// `select` that polls its branches in argument order (the first ready one wins).
template <awaitable... A>
task<std::variant<detail::value_or_monostate_t<await_result_t<A&&>>...>> select_biased(A&&... aws) {
    return detail::select_tasks(true, detail::to_branch_task(std::forward<A>(aws))...);
}

/// The first of `aws` to finish, with its index; the others are cancelled.
template <awaitable A>
task<std::pair<std::size_t, detail::value_or_monostate_t<await_result_t<A>>>>
race(std::vector<A> aws) {
    using T = await_result_t<A>;
    std::vector<task<T>> ts;
    ts.reserve(aws.size());
    for (auto& aw : aws)
        ts.push_back(detail::into_task(std::move(aw)));
    return detail::race_tasks(std::move(ts));
}

} // namespace eddy
