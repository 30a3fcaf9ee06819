#include <eddy/clock.hpp>
#include <eddy/join.hpp>
#include <eddy/result.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "support/manual_event.hpp"
#include "support/throws.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;
using eddy::test::drop_counter;
using std::chrono::milliseconds;

namespace {

eddy::task<int> fails_after(milliseconds d) {
    co_await eddy::sleep(d);
    throw std::runtime_error("branch failed");
}

eddy::task<eddy::result<int>> result_after(milliseconds d, eddy::result<int> r) {
    co_await eddy::sleep(d);
    co_return r;
}

} // namespace

TEST_CASE("join runs branches concurrently and returns their values in order", "[join]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        auto [a, b, c] = co_await eddy::join(eddy::test::value_after(30ms, 1),
                                             eddy::test::value_after(10ms, 2), eddy::sleep(20ms));
        CHECK(a == 1);
        CHECK(b == 2);
        CHECK(std::is_same_v<decltype(c), std::monostate>);
        CHECK(eddy::clock::now() - start == 30ms); // concurrently, not 60 ms
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("join cancels the other branches when one throws", "[join]") {
    auto rt = eddy::test::paused_runtime();
    int drops = 0;
    rt.block_on([](int* drops) -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        bool threw = co_await eddy::test::throws_as<std::runtime_error>(eddy::join(
            eddy::test::value_after_counted(1h, 1, drop_counter(drops)), fails_after(5ms)));
        CHECK(threw);
        CHECK(*drops == 1);
        CHECK(eddy::clock::now() - start == 5ms);
    }(&drops));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("try_join stops at the first error result", "[join]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto ok = co_await eddy::try_join(result_after(5ms, 1), result_after(10ms, 2),
                                          eddy::test::value_after(1ms, 3));
        REQUIRE(ok.has_value());
        CHECK(*ok == std::tuple<int, int, int>{1, 2, 3});

        const eddy::instant start = eddy::clock::now();
        auto bad =
            co_await eddy::try_join(result_after(1h, 1), result_after(5ms, eddy::errc::closed));
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error() == eddy::errc::closed);
        CHECK(eddy::clock::now() - start == 5ms);

        bool threw = co_await eddy::test::throws_as<std::runtime_error>(
            eddy::try_join(fails_after(1ms), eddy::test::value_after(1h, 1)));
        CHECK(threw);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("join_all over 10,000 branches keeps their order", "[join]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        std::vector<eddy::task<int>> tasks;
        for (int i = 0; i < 10'000; ++i)
            tasks.push_back(eddy::test::value_after(milliseconds((i * 7919) % 1000), i));
        const eddy::instant start = eddy::clock::now();
        std::vector<int> out = co_await eddy::join_all(std::move(tasks));
        CHECK(eddy::clock::now() - start == 999ms);
        REQUIRE(out.size() == 10'000);
        bool in_order = true;
        for (int i = 0; i < 10'000; ++i)
            in_order = in_order && out[static_cast<std::size_t>(i)] == i;
        CHECK(in_order);
        std::vector<eddy::task<int>> none;
        auto empty = co_await eddy::join_all(std::move(none));
        CHECK(empty.empty());
    }());
}

TEST_CASE("join_all on the multi-thread runtime with yielding branches", "[join]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const long sum = rt.block_on([]() -> eddy::task<long> {
        std::vector<eddy::task<int>> tasks;
        for (int i = 0; i < 1000; ++i) {
            tasks.push_back([](int i) -> eddy::task<int> {
                for (int k = 0; k < 10; ++k)
                    co_await eddy::yield_now();
                co_return i;
            }(i));
        }
        auto out = co_await eddy::join_all(std::move(tasks));
        long s = 0;
        for (int v : out)
            s += v;
        co_return s;
    }());
    CHECK(sum == 999 * 1000 / 2);
}

TEST_CASE("try_join_all returns the first error and cancels the rest", "[join]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        std::vector<eddy::task<eddy::result<int>>> tasks;
        for (int i = 0; i < 100; ++i)
            tasks.push_back(result_after(milliseconds(10 + i), i));
        tasks.push_back(result_after(5ms, eddy::errc::full));
        auto r = co_await eddy::try_join_all(std::move(tasks));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == eddy::errc::full);

        std::vector<eddy::task<eddy::result<int>>> good;
        for (int i = 0; i < 3; ++i)
            good.push_back(result_after(1ms, i));
        auto g = co_await eddy::try_join_all(std::move(good));
        REQUIRE(g.has_value());
        CHECK(*g == std::vector<int>{0, 1, 2});
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}
