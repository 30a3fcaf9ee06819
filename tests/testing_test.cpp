#include <eddy/join.hpp>
#include <eddy/join_set.hpp>
#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/mutex.hpp>
#include <eddy/sync/semaphore.hpp>
#include <eddy/testing.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "support/time.hpp"

using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

eddy::task<int> steps(int n) {
    for (int i = 0; i < n; ++i)
        co_await eddy::sleep(1ms);
    co_return n;
}

} // namespace

TEST_CASE("cancel_at_every_suspension counts and cancels every suspension point", "[testing]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto none = co_await eddy::testing::cancel_at_every_suspension(
            [] { return []() -> eddy::task<int> { co_return 1; }(); });
        CHECK(none == 0);
        auto five = co_await eddy::testing::cancel_at_every_suspension([] { return steps(5); });
        CHECK(five == 5);
        auto yields =
            co_await eddy::testing::cancel_at_every_suspension([] { return eddy::yield_now(); });
        CHECK(yields == 1);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("every time-layer and combinator operation cancels cleanly at each point",
          "[testing][timeout][select][join]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto a = co_await eddy::testing::cancel_at_every_suspension(
            [] { return eddy::timeout(10ms, steps(20)); });
        CHECK(a >= 1);
        auto b = co_await eddy::testing::cancel_at_every_suspension(
            [] { return eddy::select(steps(3), steps(5)); });
        CHECK(b >= 1);
        auto c = co_await eddy::testing::cancel_at_every_suspension(
            [] { return eddy::join(steps(3), steps(4), eddy::sleep(2ms)); });
        CHECK(c >= 1);
        auto d = co_await eddy::testing::cancel_at_every_suspension([] {
            return []() -> eddy::task<int> {
                eddy::join_set<int> set;
                set.spawn(steps(2));
                set.spawn(steps(3));
                int sum = 0;
                while (auto r = co_await set.join_next())
                    sum += r->take();
                co_return sum;
            }();
        });
        CHECK(d >= 1);
    }());
    CHECK(eddy::test::timers_settle_at(rt, 0));
}

TEST_CASE("a mutex lock cancelled at each suspension point leaves the mutex usable",
          "[testing][mutex]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto m = std::make_shared<eddy::mutex<int>>(0);
        // Another task holds the lock for a while, so lock() has to wait.
        auto holder = eddy::spawn([m]() -> eddy::task<> {
            for (int i = 0; i < 5; ++i) {
                auto g = co_await m->lock();
                co_await eddy::sleep(3ms);
            }
        });
        // Named, not a temporary: GCC 12 destroys a temporary with a destructor (here, the
        // captured shared_ptr) twice when it appears inside a co_await expression.
        auto lock_and_bump = [m] {
            return [](std::shared_ptr<eddy::mutex<int>> m) -> eddy::task<> {
                auto g = co_await m->lock();
                ++*g;
                co_await eddy::sleep(1ms);
            }(m);
        };
        auto points = co_await eddy::testing::cancel_at_every_suspension(lock_and_bump);
        CHECK(points >= 1);
        co_await holder;
        auto g = m->try_lock();
        CHECK(g.has_value()); // nobody kept it
    }());
}
