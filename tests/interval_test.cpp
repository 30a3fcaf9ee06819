#include <eddy/clock.hpp>
#include <eddy/interval.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/time.hpp>
#include <eddy/timeout.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <vector>

#include "support/time.hpp"

using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

/// Ticks `n` times after a 35 ms stall (period 10 ms) and returns each tick's scheduled time and
/// the clock when it completed, as milliseconds from the start.
eddy::task<std::vector<std::pair<long, long>>> after_stall(eddy::missed_tick_behavior b, int n) {
    const eddy::instant start = eddy::clock::now();
    eddy::interval iv(10ms);
    iv.set_missed_tick_behavior(b);
    auto ms = [start](eddy::instant t) {
        return static_cast<long>(std::chrono::duration_cast<milliseconds>(t - start).count());
    };
    std::vector<std::pair<long, long>> out;
    out.emplace_back(ms(co_await iv.tick()), ms(eddy::clock::now()));
    co_await eddy::time::advance(35ms); // busy for three and a half periods
    for (int i = 0; i < n; ++i) {
        const eddy::instant t = co_await iv.tick();
        out.emplace_back(ms(t), ms(eddy::clock::now()));
    }
    co_return out;
}

using ticks = std::vector<std::pair<long, long>>;

} // namespace

TEST_CASE("interval ticks at once, then every period", "[interval]") {
    auto rt = eddy::test::paused_runtime();
    auto got = rt.block_on([]() -> eddy::task<std::vector<long>> {
        const eddy::instant start = eddy::clock::now();
        eddy::interval iv(10ms);
        std::vector<long> at;
        for (int i = 0; i < 4; ++i) {
            co_await iv.tick();
            at.push_back(static_cast<long>(
                std::chrono::duration_cast<milliseconds>(eddy::clock::now() - start).count()));
        }
        co_return at;
    }());
    CHECK(got == std::vector<long>{0, 10, 20, 30});
}

TEST_CASE("interval missed ticks: burst catches up on the original schedule", "[interval]") {
    auto rt = eddy::test::paused_runtime();
    auto got = rt.block_on(after_stall(eddy::missed_tick_behavior::burst, 4));
    CHECK(got == ticks{{0, 0}, {10, 35}, {20, 35}, {30, 35}, {40, 40}});
}

TEST_CASE("interval missed ticks: delay restarts one period after the late tick", "[interval]") {
    auto rt = eddy::test::paused_runtime();
    auto got = rt.block_on(after_stall(eddy::missed_tick_behavior::delay, 3));
    CHECK(got == ticks{{0, 0}, {10, 35}, {45, 45}, {55, 55}});
}

TEST_CASE("interval missed ticks: skip continues on the original grid", "[interval]") {
    auto rt = eddy::test::paused_runtime();
    auto got = rt.block_on(after_stall(eddy::missed_tick_behavior::skip, 3));
    CHECK(got == ticks{{0, 0}, {10, 35}, {40, 40}, {50, 50}});
}

TEST_CASE("interval tick is cancel-safe and can be reset", "[interval]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        auto iv = eddy::interval_at(start + 10ms, 10ms);
        // A tick lost to a timeout is not consumed.
        auto r = co_await eddy::timeout(5ms, iv.tick());
        CHECK_FALSE(r.has_value());
        const eddy::instant t = co_await iv.tick();
        CHECK(t == start + 10ms);
        CHECK(eddy::clock::now() == start + 10ms);
        iv.reset(); // next one period from now
        const eddy::instant t2 = co_await iv.tick();
        CHECK(t2 == start + 20ms);
        iv.reset_immediately();
        const eddy::instant t3 = co_await iv.tick();
        CHECK(t3 == start + 20ms);
        iv.reset_at(start + 100ms);
        const eddy::instant t4 = co_await iv.tick();
        CHECK(t4 == start + 100ms);
        CHECK(iv.period() == 10ms);
    }());
}

TEST_CASE("interval refuses a non-positive period", "[interval]") {
    CHECK_THROWS_AS(eddy::interval(0ms), std::invalid_argument);
    CHECK_THROWS_AS(eddy::interval(-1ms), std::invalid_argument);
}
