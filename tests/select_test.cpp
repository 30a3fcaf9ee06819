#include <eddy/clock.hpp>
#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <variant>
#include <vector>

#include "support/manual_event.hpp"
#include "support/throws.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;
using eddy::test::drop_counter;
using eddy::test::manual_event;
using std::chrono::milliseconds;

namespace {

eddy::task<int> counts_when_done(int* done, int v) {
    ++*done;
    co_return v;
}

} // namespace

TEST_CASE("select returns the first branch to finish and cancels the others", "[select]") {
    auto rt = eddy::test::paused_runtime();
    int drops = 0;
    rt.block_on([](int* drops) -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        auto r =
            co_await eddy::select(eddy::test::value_after_counted(10ms, 1, drop_counter(drops)),
                                  eddy::test::value_after(5ms, 2), eddy::sleep(1h));
        REQUIRE(r.index() == 1);
        CHECK(std::get<1>(r) == 2);
        CHECK(*drops == 1); // the loser's frame is gone before select returns
        CHECK(eddy::clock::now() - start == 5ms);
    }(&drops));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("select completes at most one branch", "[select]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        for (int round = 0; round < 100; ++round) {
            int done = 0;
            auto r = co_await eddy::select(counts_when_done(&done, 0), counts_when_done(&done, 1),
                                           counts_when_done(&done, 2));
            CHECK(done == 1);
            CHECK(r.index() < 3);
        }
    }());
}

TEST_CASE("select is fair between ready branches; select_biased prefers the first", "[select]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        int wins[2] = {0, 0};
        for (int round = 0; round < 1000; ++round) {
            auto r = co_await eddy::select(std::suspend_never{}, std::suspend_never{});
            ++wins[r.index()];
        }
        CHECK(wins[0] > 300);
        CHECK(wins[1] > 300);
        for (int round = 0; round < 100; ++round) {
            auto r = co_await eddy::select_biased(std::suspend_never{}, std::suspend_never{});
            CHECK(r.index() == 0);
        }
    }());
}

TEST_CASE("select rethrows the winner's exception after cancelling the losers", "[select]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        bool threw = co_await eddy::test::throws_as<std::runtime_error>(eddy::select(
            []() -> eddy::task<int> {
                co_await eddy::sleep(1ms);
                throw std::runtime_error("x");
            }(),
            eddy::test::value_after(1h, 1)));
        CHECK(threw);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("select between a waiter and a sleep withdraws the losing waiter", "[select]") {
    auto rt = eddy::test::paused_runtime();
    manual_event never;
    manual_event soon;
    rt.block_on([](manual_event* never, manual_event* soon) -> eddy::task<> {
        auto r = co_await eddy::select(never->wait(), eddy::sleep(10ms));
        CHECK(r.index() == 1);
        CHECK(never->waiting() == 0);
        auto setter = eddy::spawn([](manual_event* ev) -> eddy::task<> {
            co_await eddy::sleep(3ms);
            ev->set();
        }(soon));
        auto s = co_await eddy::select(soon->wait(), eddy::sleep(10ms));
        CHECK(s.index() == 0);
        co_await setter;
    }(&never, &soon));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("nested selects and timeouts", "[select]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        auto r = co_await eddy::select(
            eddy::timeout(20ms, eddy::select(eddy::test::value_after(30ms, 1),
                                             eddy::test::value_after(40ms, 2))),
            eddy::select(eddy::test::value_after(25ms, 3),
                         eddy::timeout(50ms, eddy::test::value_after(60ms, 4))));
        REQUIRE(r.index() == 0);
        CHECK(std::get<0>(r).error() == eddy::errc::timed_out);
        CHECK(eddy::clock::now() - start == 20ms);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("race returns the fastest of many alike", "[select]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        std::vector<eddy::task<int>> replicas;
        for (int i = 0; i < 200; ++i)
            replicas.push_back(eddy::test::value_after(milliseconds(100 + (i * 37) % 200), i * 10));
        auto [index, value] = co_await eddy::race(std::move(replicas));
        CHECK(index == 0); // 100 ms: i = 0 is the only one at (i * 37) % 200 == 0
        CHECK(value == 0);
        std::vector<eddy::task<int>> none;
        bool threw =
            co_await eddy::test::throws_as<std::invalid_argument>(eddy::race(std::move(none)));
        CHECK(threw);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("select on the multi-thread runtime: wakes from other workers", "[select][stress]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(4).build();
    const int first = rt.block_on([]() -> eddy::task<int> {
        int zero_wins = 0;
        for (int round = 0; round < 300; ++round) {
            auto h = eddy::spawn(eddy::test::value_after(milliseconds(round % 3), 7));
            auto r = co_await eddy::select(std::move(h), eddy::sleep(milliseconds(1)));
            zero_wins += r.index() == 0 ? 1 : 0;
        }
        co_return zero_wins;
    }());
    CHECK(first >= 0);
    // A losing join only stops waiting: the detached task finishes its short sleep on its own.
    CHECK(eddy::test::timers_settle_at(rt, 0));
}
