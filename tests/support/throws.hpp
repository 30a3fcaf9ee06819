#pragma once
// Awaits something and reports whether it threw E. Catch2's assertion macros must not contain
// `co_await` (GCC 12 mis-evaluates co_await inside their short-circuit conditions), so tests write
// `bool threw = co_await eddy::test::throws_as<E>(x); CHECK(threw);`.

#include <eddy/join_handle.hpp>
#include <eddy/task.hpp>

#include <utility>

namespace eddy::test {

template <class E, class A>
eddy::task<bool> throws_as(A&& aw) {
    try {
        static_cast<void>(co_await std::forward<A>(aw));
    } catch (const E&) {
        co_return true;
    } catch (...) {
        co_return false;
    }
    co_return false;
}

/// Aborts the task behind `h` and waits until it is gone: true if it ended cancelled (its join
/// threw `eddy::join_error`), false if it had finished first. Anything else it threw propagates.
template <class T>
eddy::task<bool> abort_and_join(eddy::join_handle<T>& h) {
    h.abort();
    try {
        static_cast<void>(co_await h);
    } catch (const eddy::join_error&) {
        co_return true;
    }
    co_return false;
}

} // namespace eddy::test
