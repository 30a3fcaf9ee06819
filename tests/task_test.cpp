#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>

#include "support/manual_event.hpp"

namespace {

eddy::task<int> ready_value(int v) {
    co_return v;
}

eddy::task<> do_nothing() {
    co_return;
}

eddy::task<int> add_chain(int depth) {
    if (depth == 0)
        co_return 0;
    co_return 1 + co_await add_chain(depth - 1);
}

eddy::task<long> await_many_ready(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i)
        sum += co_await ready_value(1);
    co_return sum;
}

eddy::task<int> throw_at(int level) {
    if (level == 0)
        throw std::runtime_error("boom at the bottom");
    co_return co_await throw_at(level - 1) + 1;
}

eddy::task<std::unique_ptr<int>> move_only_value() {
    co_return std::make_unique<int>(7);
}

template <class A>
auto run(A&& aw) {
    return eddy::runtime::builder::current_thread().build().block_on(std::forward<A>(aw));
}

} // namespace

TEST_CASE("task returns values and void through co_await", "[task]") {
    auto body = []() -> eddy::task<int> {
        co_await do_nothing();
        int a = co_await ready_value(20);
        int b = co_await ready_value(22);
        co_return a + b;
    };
    CHECK(run(body()) == 42);
}

TEST_CASE("task supports move-only results", "[task]") {
    auto p = run(move_only_value());
    REQUIRE(p != nullptr);
    CHECK(*p == 7);
}

TEST_CASE("a chain of 1,000,000 nested awaits runs in constant stack", "[task]") {
    CHECK(run(add_chain(1'000'000)) == 1'000'000);
}

TEST_CASE("1,000,000 awaits of ready tasks in a loop run in constant stack", "[task]") {
    CHECK(run(await_many_ready(1'000'000)) == 1'000'000);
}

TEST_CASE("exceptions propagate through three levels of awaits", "[task]") {
    auto outer = []() -> eddy::task<std::string> {
        try {
            co_await throw_at(3);
        } catch (const std::runtime_error& e) {
            co_return e.what();
        }
        co_return "no exception";
    };
    CHECK(run(outer()) == "boom at the bottom");
    CHECK_THROWS_WITH(run(throw_at(3)), "boom at the bottom");
}

TEST_CASE("destroying a task that was never awaited destroys its frame", "[task]") {
    int drops = 0;
    {
        auto t = [](eddy::test::drop_counter d) -> eddy::task<int> {
            (void)d;
            co_return 1;
        }(eddy::test::drop_counter(&drops));
        CHECK(drops == 0);
    }
    CHECK(drops == 1);
}

TEST_CASE("task is move-only and a moved-from task refuses to be awaited", "[task]") {
    auto t = ready_value(3);
    auto u = std::move(t);
    CHECK_FALSE(t.valid()); // NOLINT(bugprone-use-after-move): checking the moved-from state
    CHECK(u.valid());
    auto body = [](eddy::task<int> moved_from) -> eddy::task<int> {
        co_return co_await std::move(moved_from);
    };
    CHECK_THROWS_AS(run(body(std::move(t))), std::logic_error);
    CHECK(run(std::move(u)) == 3);
}

TEST_CASE("awaiting a finished task a second time is an error", "[task]") {
    auto body = []() -> eddy::task<int> {
        auto t = ready_value(5);
        int a = co_await std::move(t);
        int b = co_await std::move(t); // NOLINT(bugprone-use-after-move): the misuse under test
        co_return a + b;
    };
    CHECK_THROWS_AS(run(body()), std::logic_error);
}

TEST_CASE("a task suspended on an event resumes when the event is set", "[task]") {
    eddy::test::manual_event ev;
    auto rt = eddy::runtime::builder::current_thread().build();
    auto body = [](eddy::test::manual_event& e) -> eddy::task<int> {
        auto waiter = eddy::spawn([&e]() -> eddy::task<int> {
            co_await e.wait();
            co_return 9;
        });
        co_await eddy::yield_now();
        e.set();
        co_return co_await waiter;
    };
    CHECK(rt.block_on(body(ev)) == 9);
}
