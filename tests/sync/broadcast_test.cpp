#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/broadcast.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

using eddy::test::make_rt;
using eddy::test::settle;

TEST_CASE("broadcast: every receiver sees every value", "[broadcast]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::broadcast::channel<int>(1024);
        std::vector<eddy::join_handle<long>> hs;
        auto consume = [](eddy::broadcast::receiver<int> rx) -> eddy::task<long> {
            long sum = 0;
            for (;;) {
                auto r = co_await rx.recv();
                if (!r)
                    co_return r.error() == eddy::errc::closed ? sum : -1;
                sum += *r;
            }
        };
        for (int i = 0; i < 3; ++i)
            hs.push_back(eddy::spawn(consume(tx.subscribe())));
        hs.push_back(eddy::spawn(consume(std::move(rx))));
        auto tx2 = tx.clone();
        for (int i = 1; i <= 500; ++i) {
            auto n = (i % 2 ? tx : tx2).send(i);
            if (!n || *n != 4)
                co_return false;
        }
        { auto gone = std::move(tx); }
        { auto gone = std::move(tx2); }
        bool all = true;
        for (auto& h : hs)
            all = (co_await h) == 500L * 501 / 2 && all;
        co_return all;
    }());
    CHECK(ok);
}

TEST_CASE("broadcast: capacity 0 is rejected, send without receivers fails", "[broadcast]") {
    CHECK_THROWS_AS(eddy::broadcast::channel<int>(0), std::invalid_argument);
    auto [tx, rx] = eddy::broadcast::channel<int>(2);
    CHECK(tx.receiver_count() == 1);
    { auto gone = std::move(rx); }
    CHECK(tx.receiver_count() == 0);
    auto r = tx.send(1);
    CHECK(r.error() == eddy::errc::closed);
    auto rx2 = tx.subscribe();
    CHECK(tx.send(2).value() == 1);
    CHECK(rx2.try_recv().value() == 2);
}

TEST_CASE("broadcast: a lagging receiver is told exactly how much it skipped", "[broadcast]") {
    auto [tx, rx] = eddy::broadcast::channel<int>(4);
    auto fast = tx.subscribe();
    for (int i = 0; i < 10; ++i) {
        REQUIRE(tx.send(i).has_value());
        CHECK(fast.try_recv().value() == i);
    }
    CHECK(rx.size() == 4);
    auto lag = rx.try_recv();
    CHECK(lag.error() == eddy::errc::lagged);
    CHECK(lag.lagged() == 6); // values 0..5 were overwritten
    for (int i = 6; i < 10; ++i) {
        auto v = rx.try_recv();
        REQUIRE(v.has_value());
        CHECK(v.lagged() == 0);
        CHECK(*v == i);
    }
    CHECK(rx.try_recv().error() == eddy::errc::empty);
    // Lag again by exactly one.
    for (int i = 10; i < 15; ++i)
        REQUIRE(tx.send(i).has_value());
    auto lag2 = rx.try_recv();
    CHECK(lag2.error() == eddy::errc::lagged);
    CHECK(lag2.lagged() == 1);
    CHECK(rx.try_recv().value() == 11);
}

TEST_CASE("broadcast: recv reports lagged in a task, then continues", "[broadcast]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::broadcast::channel<std::string>(2);
        for (int i = 0; i < 5; ++i)
            REQUIRE(tx.send(std::to_string(i)).has_value());
        auto a = co_await rx.recv();
        CHECK(a.error() == eddy::errc::lagged);
        CHECK(a.lagged() == 3);
        auto b = co_await rx.recv();
        CHECK(b.value() == "3");
        auto c = co_await rx.recv();
        CHECK(c.value() == "4");
        { auto gone = std::move(tx); }
        auto d = co_await rx.recv();
        CHECK(d.error() == eddy::errc::closed);
        CHECK(rx.try_recv().error() == eddy::errc::closed);
    }());
}

TEST_CASE("broadcast: subscribers see only values sent after they subscribed", "[broadcast]") {
    auto [tx, rx] = eddy::broadcast::channel<int>(8);
    REQUIRE(tx.send(1).has_value());
    auto late = tx.subscribe();
    auto later = rx.resubscribe();
    REQUIRE(tx.send(2).value() == 3);
    CHECK(rx.try_recv().value() == 1);
    CHECK(rx.try_recv().value() == 2);
    CHECK(late.try_recv().value() == 2);
    CHECK(later.try_recv().value() == 2);
    CHECK(late.try_recv().error() == eddy::errc::empty);
}

TEST_CASE("broadcast: the last sender's drop wakes waiting receivers", "[broadcast]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    int closed = rt.block_on([]() -> eddy::task<int> {
        auto [tx, rx] = eddy::broadcast::channel<int>(4);
        std::vector<eddy::join_handle<bool>> hs;
        for (int i = 0; i < 3; ++i) {
            hs.push_back(eddy::spawn([](eddy::broadcast::receiver<int> rx) -> eddy::task<bool> {
                auto r = co_await rx.recv();
                co_return r.error() == eddy::errc::closed;
            }(tx.subscribe())));
        }
        co_await settle();
        { auto gone = std::move(tx); }
        int n = 0;
        for (auto& h : hs)
            n += (co_await h) ? 1 : 0;
        co_return n;
    }());
    CHECK(closed == 3);
}

TEST_CASE("broadcast: an aborted recv withdraws and loses no value", "[broadcast][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::broadcast::channel<int>(4);
        auto h = eddy::spawn([](eddy::broadcast::receiver<int>* rx) -> eddy::task<> {
            (void)co_await rx->recv();
            FAIL("resumed");
        }(&rx));
        co_await settle();
        REQUIRE(tx.send(9).has_value());        // wakes it...
        co_await eddy::test::abort_and_join(h); // ...but it is cancelled first
        auto v = co_await rx.recv();
        CHECK(v.value() == 9);
        // Aborted while waiting with nothing sent: later sends wake nobody stale.
        auto h2 = eddy::spawn([](eddy::broadcast::receiver<int>* rx) -> eddy::task<> {
            (void)co_await rx->recv();
            FAIL("resumed");
        }(&rx));
        co_await settle();
        co_await eddy::test::abort_and_join(h2);
        REQUIRE(tx.send(10).has_value());
        auto w = co_await rx.recv();
        CHECK(w.value() == 10);
    }());
}

TEST_CASE("broadcast: blocking_recv on a plain thread", "[broadcast][blocking]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    auto [tx, rx] = eddy::broadcast::channel<int>(64);
    long sum = 0;
    std::thread t([&sum, rx = std::move(rx)]() mutable {
        for (;;) {
            auto r = rx.blocking_recv();
            if (!r)
                break;
            sum += *r;
        }
    });
    rt.block_on([](eddy::broadcast::sender<int> tx) -> eddy::task<> {
        for (int i = 1; i <= 50; ++i) {
            (void)tx.send(i);
            co_await eddy::yield_now();
        }
    }(std::move(tx)));
    t.join();
    CHECK(sum == 50 * 51 / 2);
}

TEST_CASE("broadcast: an always-ready recv loop lets other tasks run", "[broadcast][coop]") {
    auto rt = make_rt(false);
    bool seen = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::broadcast::channel<int>(4096);
        for (int i = 0; i < 4096; ++i)
            REQUIRE(tx.send(i).has_value());
        auto flag = std::make_shared<std::atomic<bool>>(false);
        auto h = eddy::spawn([flag]() -> eddy::task<> {
            flag->store(true);
            co_return;
        });
        bool ran = false;
        for (int i = 0; i < 4096; ++i) {
            auto v = co_await rx.recv();
            REQUIRE(v.value() == i);
            if (flag->load() && i < 4095)
                ran = true;
        }
        co_await h;
        co_return ran;
    }());
    CHECK(seen);
}
