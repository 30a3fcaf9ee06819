#include <eddy/clock.hpp>
#include <eddy/join_set.hpp>
#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <vector>

#include "support/manual_event.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;
using eddy::test::atomic_drop_counter;
using std::chrono::milliseconds;

TEST_CASE("join_set returns members in completion order", "[join_set]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        eddy::join_set<int> set;
        CHECK(set.empty());
        const int ms[] = {30, 10, 20};
        std::vector<eddy::task_id> ids;
        for (int i = 0; i < 3; ++i)
            ids.push_back(set.spawn(eddy::test::value_after(milliseconds(ms[i]), i)));
        CHECK(set.size() == 3);
        std::vector<int> order;
        while (auto r = co_await set.join_next()) {
            REQUIRE(r->has_value());
            const auto id = r->id();
            const int v = r->take();
            CHECK(id == ids[static_cast<std::size_t>(v)]);
            order.push_back(v);
        }
        CHECK(order == std::vector<int>{1, 2, 0});
        CHECK(set.empty());
        auto none = co_await set.join_next();
        CHECK_FALSE(none.has_value());
    }());
}

TEST_CASE("join_set reports exceptions and cancellation per member", "[join_set]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        eddy::join_set<int> set;
        set.spawn([]() -> eddy::task<int> {
            co_await eddy::sleep(1ms);
            throw std::runtime_error("member failed");
        });
        set.spawn(eddy::test::value_after(1h, 1));
        auto failed = co_await set.join_next();
        REQUIRE(failed.has_value());
        CHECK(failed->exception() != nullptr);
        CHECK_THROWS_AS(failed->take(), std::runtime_error);
        set.abort_all();
        auto cancelled = co_await set.join_next();
        REQUIRE(cancelled.has_value());
        CHECK(cancelled->is_cancelled());
        CHECK_THROWS_AS(cancelled->take(), eddy::join_error);
        CHECK(set.empty());
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("join_set fan-out of 10,000 tasks on two workers", "[join_set]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const long sum = rt.block_on([]() -> eddy::task<long> {
        eddy::join_set<int> set;
        for (int i = 0; i < 10'000; ++i) {
            set.spawn([](int i) -> eddy::task<int> {
                co_await eddy::yield_now();
                co_return i;
            }(i));
        }
        long s = 0;
        std::size_t n = 0;
        while (auto r = co_await set.join_next()) {
            s += r->take();
            ++n;
        }
        CHECK(n == 10'000);
        co_return s;
    }());
    CHECK(sum == 9'999L * 10'000 / 2);
}

TEST_CASE("destroying a join_set aborts its running members", "[join_set]") {
    std::atomic<int> drops{0};
    {
        auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
        rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
            {
                eddy::join_set<void> set;
                for (int i = 0; i < 100; ++i) {
                    set.spawn([](atomic_drop_counter c) -> eddy::task<> {
                        const atomic_drop_counter held = std::move(c);
                        co_await eddy::sleep(1h);
                    }(atomic_drop_counter(drops)));
                }
                set.spawn([]() -> eddy::task<> { co_return; }());
                co_await eddy::yield_now();
            } // aborted here
            for (int i = 0; i < 1000 && drops->load() < 100; ++i)
                co_await eddy::sleep(1ms);
        }(&drops));
        CHECK(eddy::test::timers_settle_at(rt, 0));
    }
    CHECK(drops.load() == 100);
}

TEST_CASE("join_set shutdown waits for every member", "[join_set]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        eddy::join_set<int> set;
        for (int i = 0; i < 10; ++i)
            set.spawn(eddy::test::value_after(1h, i));
        co_await set.shutdown();
        CHECK(set.empty());
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("join_next is cancel-safe: a member finished meanwhile stays in the set", "[join_set]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        eddy::join_set<int> set;
        set.spawn(eddy::test::value_after(10ms, 5));
        // join_next loses to a shorter sleep, then the member finishes while nobody waits.
        auto r = co_await eddy::select(set.join_next(), eddy::sleep(5ms));
        CHECK(r.index() == 1);
        co_await eddy::sleep(10ms);
        CHECK(set.size() == 1);
        auto got = set.try_join_next();
        REQUIRE(got.has_value());
        CHECK(got->take() == 5);
    }());
}

TEST_CASE("join_set spawn_on another runtime", "[join_set]") {
    auto other = eddy::runtime::builder::multi_thread().worker_threads(1).build();
    auto rt = eddy::runtime::builder::current_thread().build();
    const int v = rt.block_on([](eddy::runtime::handle h) -> eddy::task<int> {
        eddy::join_set<int> set;
        set.spawn_on(h, []() -> eddy::task<int> { co_return 42; }());
        auto r = co_await set.join_next();
        co_return r->take();
    }(other.get_handle()));
    CHECK(v == 42);
}
