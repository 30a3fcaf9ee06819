#include <eddy/clock.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/time.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/throws.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {

/// Sleeps `d`, then appends `id` to `order` and the time slept to `slept`.
eddy::task<> sleeper(nanoseconds d, int id, std::vector<int>* order,
                     std::vector<nanoseconds>* slept) {
    const eddy::instant start = eddy::clock::now();
    co_await eddy::sleep(d);
    order->push_back(id);
    if (slept != nullptr)
        slept->push_back(eddy::clock::now() - start);
}

} // namespace

TEST_CASE("sleep on a paused clock completes at its deadline, instantly", "[sleep]") {
    auto rt = eddy::test::paused_runtime();
    const auto real_start = std::chrono::steady_clock::now();
    const auto waited = rt.block_on([]() -> eddy::task<nanoseconds> {
        const eddy::instant start = eddy::clock::now();
        co_await eddy::sleep(1h);
        co_return eddy::clock::now() - start;
    }());
    CHECK(waited == 1h);
    CHECK(std::chrono::steady_clock::now() - real_start < 10s);
    CHECK(eddy::test::active_timers(rt) == 0);
    CHECK(rt.get_handle().metrics().fired_timers == 1);
}

TEST_CASE("sleep on the real clock waits at least its duration, on both flavors", "[sleep]") {
    for (auto builder : {eddy::runtime::builder::current_thread(),
                         eddy::runtime::builder::multi_thread().worker_threads(2)}) {
        auto rt = builder.build();
        const auto waited = rt.block_on([]() -> eddy::task<nanoseconds> {
            const auto start = std::chrono::steady_clock::now();
            co_await eddy::sleep(3ms);
            co_return std::chrono::steady_clock::now() - start;
        }());
        CHECK(waited >= 3ms);
    }
}

TEST_CASE("timers fire in deadline order, equal deadlines in registration order", "[sleep]") {
    auto rt = eddy::test::paused_runtime();
    std::vector<int> order;
    rt.block_on([](std::vector<int>* order) -> eddy::task<> {
        const int ms[] = {30, 10, 20, 10, 30, 5, 10};
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 7; ++i)
            hs.push_back(eddy::spawn(sleeper(milliseconds(ms[i]), i, order, nullptr)));
        for (auto& h : hs)
            co_await h;
    }(&order));
    CHECK(order == std::vector<int>{5, 1, 3, 6, 2, 0, 4});
}

TEST_CASE("sleeps end exactly at their deadline across every wheel level boundary", "[sleep]") {
    auto rt = eddy::test::paused_runtime();
    std::vector<int> order;
    std::vector<nanoseconds> slept;
    std::vector<std::int64_t> ms;
    for (std::int64_t edge = 64; edge <= (std::int64_t{1} << 36); edge *= 64) {
        ms.push_back(edge - 1);
        ms.push_back(edge);
        ms.push_back(edge + 1);
    }
    ms.push_back(std::int64_t{3} << 36); // beyond the wheel's ~2.2 years: goes round again
    rt.block_on([](const std::vector<std::int64_t>* ms, std::vector<int>* order,
                   std::vector<nanoseconds>* slept) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (std::size_t i = 0; i < ms->size(); ++i)
            hs.push_back(
                eddy::spawn(sleeper(milliseconds((*ms)[i]), static_cast<int>(i), order, slept)));
        for (auto& h : hs)
            co_await h;
    }(&ms, &order, &slept));
    REQUIRE(order.size() == ms.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
        CHECK(order[k] == static_cast<int>(k));
        CHECK(slept[k] == milliseconds(ms[k]));
    }
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("a cancelled sleep leaves no timer behind", "[sleep]") {
    SECTION("current-thread, paused") {
        auto rt = eddy::test::paused_runtime();
        auto h = rt.spawn(eddy::sleep(1h));
        rt.block_on(eddy::yield_now()); // let it register
        CHECK(eddy::test::active_timers(rt) == 1);
        h.abort();
        rt.block_on(eddy::yield_now());
        CHECK(h.is_finished());
        CHECK(eddy::test::active_timers(rt) == 0);
    }
    SECTION("multi-thread, 1,000 sleepers aborted") {
        auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 1000; ++i)
            hs.push_back(rt.spawn(eddy::sleep(1h)));
        const bool all_armed = eddy::test::timers_settle_at(rt, 1000);
        CHECK(all_armed);
        for (auto& h : hs)
            h.abort();
        for (auto& h : hs) {
            bool cancelled = rt.block_on(eddy::test::throws_as<eddy::join_error>(h));
            CHECK(cancelled);
        }
        CHECK(eddy::test::active_timers(rt) == 0);
    }
    SECTION("runtime shutdown with sleepers") {
        auto rt = eddy::test::paused_runtime();
        for (int i = 0; i < 100; ++i)
            (void)rt.spawn(eddy::sleep(1h + milliseconds(i)));
        rt.block_on(eddy::yield_now());
        CHECK(eddy::test::active_timers(rt) == 100);
        // The destructor cancels them; ASan reports any registration left behind.
    }
}

TEST_CASE("sleep edge cases: past deadlines, zero, negative, forever", "[sleep]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        co_await eddy::sleep(0ms);
        co_await eddy::sleep(-5s);
        co_await eddy::sleep_until(start - 1h);
        CHECK(eddy::clock::now() == start);
        // A sleep "forever" registers (saturated, no overflow) and is cancelled cleanly.
        auto forever = eddy::spawn(eddy::sleep(std::chrono::hours::max()));
        co_await eddy::yield_now();
        forever.abort();
        bool cancelled = co_await eddy::test::throws_as<eddy::join_error>(forever);
        CHECK(cancelled);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("a sleep can be reset and awaited again", "[sleep]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        auto s = eddy::sleep(10ms);
        CHECK_FALSE(s.is_elapsed());
        co_await s;
        CHECK(s.is_elapsed());
        co_await s; // already elapsed: completes at once
        CHECK(eddy::clock::now() - start == 10ms);
        s.reset(s.deadline() + 5ms);
        co_await s;
        CHECK(eddy::clock::now() - start == 15ms);
    }());
}

TEST_CASE("an always-elapsed sleep loop still yields to other tasks", "[sleep][coop]") {
    auto rt = eddy::test::paused_runtime();
    const bool other_ran = rt.block_on([]() -> eddy::task<bool> {
        auto flag = std::make_shared<std::atomic<bool>>(false);
        auto other = eddy::spawn([flag]() -> eddy::task<> {
            flag->store(true);
            co_return;
        });
        const eddy::instant past = eddy::clock::now();
        for (int i = 0; i < 100'000 && !flag->load(); ++i)
            co_await eddy::sleep_until(past);
        co_await other;
        co_return flag->load();
    }());
    CHECK(other_ran);
}

TEST_CASE("sleep outside a task is a logic_error", "[sleep]") {
    auto s = eddy::sleep(1ms);
    CHECK_THROWS_AS(s.await_suspend(std::noop_coroutine()), std::logic_error);
}

TEST_CASE("a timer registered earlier than the one the parked worker waits for wakes it",
          "[sleep]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    auto far = rt.spawn(eddy::sleep(1h));
    const bool armed = eddy::test::timers_settle_at(rt, 1);
    REQUIRE(armed);
    std::this_thread::sleep_for(2ms); // both workers park, one waits on the 1 h timer
    const auto start = std::chrono::steady_clock::now();
    rt.block_on(eddy::sleep(2ms));
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    far.abort();
}

TEST_CASE("timers from many workers at once", "[sleep][stress]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(4).build();
    constexpr int tasks = 200;
    constexpr int rounds = 10;
    std::atomic<int> done{0};
    rt.block_on([](std::atomic<int>* done) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (int t = 0; t < tasks; ++t) {
            hs.push_back(eddy::spawn([t, done]() -> eddy::task<> {
                std::minstd_rand rng(static_cast<unsigned>(t + 1));
                for (int r = 0; r < rounds; ++r) {
                    // Register, and often cancel before firing, from whichever worker runs us.
                    auto victim = eddy::spawn(eddy::sleep(milliseconds(rng() % 5)));
                    co_await eddy::sleep(std::chrono::microseconds(rng() % 2000));
                    if (rng() % 2 == 0)
                        victim.abort();
                    victim.detach();
                }
                done->fetch_add(1);
            }));
        }
        for (auto& h : hs)
            co_await h;
    }(&done));
    CHECK(done.load() == tasks);
    const bool drained = eddy::test::timers_settle_at(rt, 0);
    CHECK(drained);
}

TEST_CASE("time::advance fires due timers and runs their tasks first", "[time]") {
    auto rt = eddy::runtime::builder::current_thread().build();
    rt.block_on([]() -> eddy::task<> {
        CHECK_FALSE(eddy::time::is_paused());
        eddy::time::pause();
        CHECK(eddy::time::is_paused());
        const eddy::instant start = eddy::clock::now();
        auto flag = std::make_shared<int>(0);
        auto h = eddy::spawn([flag]() -> eddy::task<> {
            co_await eddy::sleep(10ms);
            *flag = 1;
        });
        co_await eddy::yield_now(); // let it register
        co_await eddy::time::advance(9ms);
        CHECK(*flag == 0);
        co_await eddy::time::advance(1ms);
        CHECK(*flag == 1);
        CHECK(eddy::clock::now() - start == 10ms);
        co_await h;
        eddy::time::resume();
        CHECK_FALSE(eddy::time::is_paused());
        const eddy::instant after = eddy::clock::now();
        CHECK(after >= start + 10ms);
        CHECK(after < start + 10s); // resumed from where it stood, not from the real clock
    }());
}

TEST_CASE("time control refuses misuse with clear errors", "[time]") {
    CHECK_THROWS_AS(eddy::time::pause(), std::logic_error); // no runtime
    CHECK_THROWS_AS(eddy::runtime::builder::multi_thread().start_paused(true).build(),
                    std::invalid_argument);
    auto mt = eddy::runtime::builder::multi_thread().worker_threads(1).build();
    const bool mt_refused = mt.block_on([]() -> eddy::task<bool> {
        try {
            eddy::time::pause();
        } catch (const std::logic_error&) {
            co_return true;
        }
        co_return false;
    }());
    CHECK(mt_refused);
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        CHECK_THROWS_AS(eddy::time::pause(), std::logic_error); // already paused
        bool negative =
            co_await eddy::test::throws_as<std::invalid_argument>(eddy::time::advance(-1ms));
        CHECK(negative);
        eddy::time::resume();
        CHECK_THROWS_AS(eddy::time::resume(), std::logic_error);
        bool not_paused =
            co_await eddy::test::throws_as<std::logic_error>(eddy::time::advance(1ms));
        CHECK(not_paused);
    }());
}

TEST_CASE("auto-advance waits while spawn_blocking work is in flight", "[time]") {
    auto rt = eddy::test::paused_runtime();
    const bool blocking_first = rt.block_on([]() -> eddy::task<bool> {
        auto order = std::make_shared<std::atomic<int>>(0);
        auto blocking = eddy::spawn_blocking([order] {
            std::this_thread::sleep_for(3ms);
            int expected = 0;
            order->compare_exchange_strong(expected, 1);
        });
        co_await eddy::sleep(1h); // must not jump ahead while the closure runs
        int expected = 0;
        order->compare_exchange_strong(expected, 2);
        co_await blocking;
        co_return order->load() == 1;
    }());
    CHECK(blocking_first);
}
