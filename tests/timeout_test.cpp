#include <eddy/clock.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/time.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "support/manual_event.hpp"
#include "support/throws.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;
using eddy::test::drop_counter;
using eddy::test::manual_event;

namespace {

eddy::task<int> throws_after(std::chrono::milliseconds d) {
    co_await eddy::sleep(d);
    throw std::runtime_error("boom");
}

} // namespace

TEST_CASE("timeout returns the value of an operation that finishes in time", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    auto r = rt.block_on(eddy::timeout(10ms, eddy::test::value_after(5ms, 7)));
    REQUIRE(r.has_value());
    CHECK(*r == 7);
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout gives errc::timed_out and cancels the operation before returning", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    int drops = 0;
    const bool cancelled_first = rt.block_on([](int* drops) -> eddy::task<bool> {
        const eddy::instant start = eddy::clock::now();
        auto r = co_await eddy::timeout(
            10ms, eddy::test::value_after_counted(1h, 1, drop_counter(drops)));
        CHECK(eddy::clock::now() - start == 10ms);
        CHECK_FALSE(r.has_value());
        CHECK(r.error() == eddy::errc::timed_out);
        CHECK(r.error() == std::errc::timed_out);
        co_return *drops == 1; // the operation's frame is gone by now
    }(&drops));
    CHECK(cancelled_first);
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout: an operation finishing at the deadline's tick wins", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    auto r = rt.block_on(eddy::timeout(10ms, eddy::test::value_after(10ms, 3)));
    REQUIRE(r.has_value());
    CHECK(*r == 3);
    auto late = rt.block_on(eddy::timeout(10ms, eddy::test::value_after(11ms, 3)));
    CHECK_FALSE(late.has_value());
}

TEST_CASE("timeout of a ready operation registers no timer", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto a = co_await eddy::timeout(1s, std::suspend_never{});
        CHECK(a.has_value());
        // A task that finishes without suspending: no timer either, even with no time at all.
        auto b = co_await eddy::timeout(0ms, []() -> eddy::task<int> { co_return 5; }());
        REQUIRE(b.has_value());
        CHECK(*b == 5);
    }());
    CHECK(rt.get_handle().metrics().fired_timers == 0);
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout with no time left times out a suspending operation", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto r = co_await eddy::timeout(0ms, eddy::test::value_after(1ms, 1));
        CHECK_FALSE(r.has_value());
        auto past =
            co_await eddy::timeout_at(eddy::clock::now() - 1s, eddy::test::value_after(1ms, 1));
        CHECK_FALSE(past.has_value());
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout_at and void operations", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        eddy::result<void> ok = co_await eddy::timeout_at(start + 10ms, eddy::sleep(5ms));
        CHECK(ok.has_value());
        eddy::result<void> late = co_await eddy::timeout_at(start + 20ms, eddy::sleep(1h));
        CHECK(late.error() == eddy::errc::timed_out);
        CHECK(eddy::clock::now() - start == 20ms);
    }());
}

TEST_CASE("timeout passes the operation's exception through", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    const bool threw = rt.block_on(
        eddy::test::throws_as<std::runtime_error>(eddy::timeout(10ms, throws_after(1ms))));
    CHECK(threw);
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("nested timeouts: the shorter one decides", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        // Outer shorter: the outer times out and cancels the inner timeout with its operation.
        auto outer =
            co_await eddy::timeout(10ms, eddy::timeout(20ms, eddy::test::value_after(1h, 1)));
        CHECK(outer.error() == eddy::errc::timed_out);
        CHECK(eddy::clock::now() - start == 10ms);
        // Inner shorter: the inner's timed_out is the outer's value.
        auto inner =
            co_await eddy::timeout(20ms, eddy::timeout(5ms, eddy::test::value_after(1h, 1)));
        REQUIRE(inner.has_value());
        CHECK(inner->error() == eddy::errc::timed_out);
        CHECK(eddy::clock::now() - start == 15ms);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout around an awaiter that becomes ready later", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    manual_event ev;
    rt.block_on([](manual_event* ev) -> eddy::task<> {
        auto setter = eddy::spawn([](manual_event* ev) -> eddy::task<> {
            co_await eddy::sleep(5ms);
            ev->set();
        }(ev));
        auto r = co_await eddy::timeout(10ms, ev->wait());
        CHECK(r.has_value());
        co_await setter;
        manual_event never;
        auto t = co_await eddy::timeout(10ms, never.wait());
        CHECK_FALSE(t.has_value());
        CHECK(never.waiting() == 0); // the cancelled wait withdrew its waker
    }(&ev));
}

namespace {

/// Lets `h` (a task that will wait in a timeout around a 2-hour sleep) suspend with both timers
/// registered, aborts it, and checks that both are gone.
template <class T>
void check_abort_withdraws_both_timers(eddy::runtime& rt, eddy::join_handle<T>& h) {
    rt.block_on(eddy::yield_now());
    CHECK(eddy::test::active_timers(rt) == 2);
    h.abort();
    rt.block_on(eddy::yield_now());
    CHECK(h.is_finished());
    CHECK(eddy::test::active_timers(rt) == 0);
}

} // namespace

TEST_CASE("aborting a task inside a timeout withdraws both timers", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    auto h = rt.spawn(eddy::timeout(1h, eddy::test::value_after(2h, 1)));
    check_abort_withdraws_both_timers(rt, h);
}

TEST_CASE("timeout around a yielding operation lets other tasks run", "[timeout][coop]") {
    for (auto builder : {eddy::runtime::builder::current_thread(),
                         eddy::runtime::builder::multi_thread().worker_threads(2)}) {
        auto rt = builder.build();
        int ok = rt.block_on([]() -> eddy::task<int> {
            int n = 0;
            for (int i = 0; i < 1000; ++i) {
                auto r = co_await eddy::timeout(1s, eddy::yield_now());
                n += r.has_value() ? 1 : 0;
            }
            co_return n;
        }());
        CHECK(ok == 1000);
        CHECK(eddy::test::active_timers(rt) == 0);
    }
}

TEST_CASE("timeouts racing wakes from other workers", "[timeout][stress]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(4).build();
    constexpr int tasks = 100;
    constexpr int rounds = 20;
    std::atomic<int> completed{0};
    std::atomic<int> timed_out{0};
    rt.block_on([](std::atomic<int>* completed, std::atomic<int>* timed_out) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (int t = 0; t < tasks; ++t) {
            hs.push_back(eddy::spawn([t, completed, timed_out]() -> eddy::task<> {
                std::minstd_rand rng(static_cast<unsigned>(t + 7));
                for (int r = 0; r < rounds; ++r) {
                    // The operation completes on another task (possibly another worker) at
                    // about the time the deadline expires.
                    auto ev = std::make_shared<manual_event>();
                    auto setter =
                        eddy::spawn([](std::shared_ptr<manual_event> ev, long us) -> eddy::task<> {
                            co_await eddy::sleep(std::chrono::microseconds(us));
                            ev->set();
                        }(ev, static_cast<long>(rng() % 2000)));
                    auto res =
                        co_await eddy::timeout(std::chrono::microseconds(rng() % 2000), ev->wait());
                    (res.has_value() ? completed : timed_out)->fetch_add(1);
                    co_await setter;
                }
            }));
        }
        for (auto& h : hs)
            co_await h;
    }(&completed, &timed_out));
    CHECK(completed.load() + timed_out.load() == tasks * rounds);
    CHECK(eddy::test::active_timers(rt) == 0);
}

// An awaiter (await_suspend returning void or bool) is suspended right in the awaiting task; the
// tests below cover what that path does on its own.

namespace {

/// An awaiter that parks its waker in `slot` (for the test to wake, clone or drop later), and can
/// instead be ready at suspension, throw while suspending, or throw from await_resume.
struct parked_awaiter {
    enum class mode { park, ready_at_suspend, throw_in_suspend, throw_in_resume };
    std::optional<eddy::waker>* slot;
    mode how = mode::park;
    drop_counter drops{nullptr};

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        if (how == mode::throw_in_suspend)
            throw std::runtime_error("suspend failed");
        if (how == mode::ready_at_suspend)
            return false;
        slot->emplace(eddy::current_waker(h));
        return true;
    }
    int await_resume() const {
        if (how == mode::throw_in_resume)
            throw std::runtime_error("resume failed");
        return 42;
    }
};

/// Whether `timeout(1s, parked_awaiter)` in mode `how` throws the awaiter's runtime_error.
eddy::task<bool> throws_in_timeout(std::optional<eddy::waker>* slot, parked_awaiter::mode how) {
    auto op = eddy::timeout(1s, parked_awaiter{slot, how});
    try {
        static_cast<void>(co_await op);
    } catch (const std::runtime_error&) {
        co_return true;
    }
    co_return false;
}

} // namespace

TEST_CASE("timeout around an awaiter: a wake in the deadline's tick wins", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        const eddy::instant start = eddy::clock::now();
        eddy::result<void> same_tick = co_await eddy::timeout(10ms, eddy::sleep(10ms));
        CHECK(same_tick.has_value());
        eddy::result<void> late = co_await eddy::timeout(10ms, eddy::sleep(11ms));
        CHECK(late.error() == eddy::errc::timed_out);
        CHECK(eddy::clock::now() - start == 20ms);
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout around an awaiter that is ready when it suspends registers no timer",
          "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    std::optional<eddy::waker> slot;
    auto r = rt.block_on(
        eddy::timeout(1s, parked_awaiter{&slot, parked_awaiter::mode::ready_at_suspend}));
    REQUIRE(r.has_value());
    CHECK(*r == 42);
    CHECK_FALSE(slot.has_value());
    CHECK(rt.get_handle().metrics().fired_timers == 0);
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout around an awaiter passes exceptions from await_suspend and await_resume",
          "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    std::optional<eddy::waker> slot;
    CHECK(rt.block_on(throws_in_timeout(&slot, parked_awaiter::mode::throw_in_suspend)));
    CHECK(eddy::test::active_timers(rt) == 0);

    // Throwing from await_resume, after a wake: the timer is withdrawn all the same.
    std::optional<eddy::waker> parked;
    auto h = rt.spawn(throws_in_timeout(&parked, parked_awaiter::mode::throw_in_resume));
    rt.block_on(eddy::yield_now());
    REQUIRE(parked.has_value());
    CHECK(eddy::test::active_timers(rt) == 1);
    std::exchange(parked, std::nullopt)->wake();
    CHECK(rt.block_on(std::move(h)));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("timeout around an awaiter: wakers that outlive it are harmless", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    std::optional<eddy::waker> slot;
    int drops = 0;
    auto r = rt.block_on(eddy::timeout(
        10ms, parked_awaiter{&slot, parked_awaiter::mode::park, drop_counter(&drops)}));
    CHECK(r.error() == eddy::errc::timed_out);
    CHECK(drops == 1); // the awaiter is gone
    REQUIRE(slot.has_value());
    // The operation's waker outlived the timeout: cloning, waking and dropping it resumes nothing.
    eddy::waker clone = slot->clone();
    slot->wake_by_ref();
    slot.reset();
    clone.wake();
    rt.block_on(eddy::yield_now());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("aborting a task in a timeout around an awaiter withdraws both timers", "[timeout]") {
    auto rt = eddy::test::paused_runtime();
    auto h = rt.spawn(eddy::timeout(1h, eddy::sleep(2h)));
    check_abort_withdraws_both_timers(rt, h);

    // Aborted after the operation was woken but before the task ran again.
    std::optional<eddy::waker> slot;
    int drops = 0;
    auto woken = rt.spawn(
        eddy::timeout(1h, parked_awaiter{&slot, parked_awaiter::mode::park, drop_counter(&drops)}));
    rt.block_on(eddy::yield_now());
    REQUIRE(slot.has_value());
    std::exchange(slot, std::nullopt)->wake();
    woken.abort();
    rt.block_on(eddy::yield_now());
    CHECK(woken.is_finished());
    CHECK(drops == 1);
    CHECK(eddy::test::active_timers(rt) == 0);
}
