#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/oneshot.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/manual_event.hpp"
#include "support/runtimes.hpp"
#include "support/threads.hpp"
#include "support/throws.hpp"

using eddy::test::atomic_drop_counter;

using eddy::test::make_rt;
using eddy::test::settle;

TEST_CASE("oneshot: a value sent before or after the await arrives", "[oneshot]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    auto v = rt.block_on([]() -> eddy::task<std::string> {
        // Sent first.
        auto [tx, rx] = eddy::oneshot::channel<std::string>();
        CHECK(tx.send("first").has_value());
        CHECK_FALSE(tx.valid()); // consumed
        auto a = co_await rx;
        REQUIRE(a.has_value());
        // Awaited first, sent from another task.
        auto [tx2, rx2] = eddy::oneshot::channel<std::string>();
        auto h = eddy::spawn([](eddy::oneshot::sender<std::string> tx) -> eddy::task<> {
            co_await eddy::yield_now();
            if (!tx.send("second"))
                throw std::runtime_error("send failed");
        }(std::move(tx2)));
        auto b = co_await rx2;
        co_await h;
        co_return *a + " " + b.value();
    }());
    CHECK(v == "first second");
}

TEST_CASE("oneshot: sender dropped unsent gives closed", "[oneshot]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    bool closed = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        auto h = eddy::spawn([](eddy::oneshot::sender<int> tx0) -> eddy::task<> {
            auto tx = std::move(tx0);
            co_await eddy::yield_now();
        }(std::move(tx)));
        auto r = co_await rx;
        co_await h;
        co_return r.error() == eddy::errc::closed;
    }());
    CHECK(closed);
}

TEST_CASE("oneshot: try_recv reports empty, the value, already_taken and closed", "[oneshot]") {
    {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        CHECK(rx.try_recv().error() == eddy::errc::empty);
        CHECK(tx.send(3).has_value());
        CHECK(rx.try_recv().value() == 3);
        CHECK(rx.try_recv().error() == eddy::errc::already_taken);
    }
    {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        { auto gone = std::move(tx); }
        CHECK(rx.try_recv().error() == eddy::errc::closed);
    }
    {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        CHECK(tx.send(1).has_value());
        CHECK_THROWS_AS((void)tx.send(2), std::logic_error); // the sender was consumed
        CHECK(rx.try_recv().value() == 1);
    }
}

TEST_CASE("oneshot: a dropped or closed receiver refuses the value and hands it back",
          "[oneshot]") {
    std::atomic<int> drops{0};
    {
        auto [tx, rx] = eddy::oneshot::channel<std::unique_ptr<int>>();
        CHECK_FALSE(tx.is_closed());
        { auto gone = std::move(rx); }
        CHECK(tx.is_closed());
        auto r = tx.send(std::make_unique<int>(5));
        CHECK(r.error() == eddy::errc::closed);
        CHECK(*r.rejected() == 5);
    }
    {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        rx.close();
        CHECK(tx.is_closed());
        auto r = tx.send(6);
        CHECK(r.error() == eddy::errc::closed);
        CHECK(rx.try_recv().error() == eddy::errc::closed);
    }
    {
        // A value sent before close() can still be received.
        auto [tx, rx] = eddy::oneshot::channel<int>();
        CHECK(tx.send(7).has_value());
        rx.close();
        CHECK(rx.try_recv().value() == 7);
    }
    {
        // Dropping the receiver destroys a sent, unreceived value.
        auto [tx, rx] = eddy::oneshot::channel<atomic_drop_counter>();
        CHECK(tx.send(atomic_drop_counter(&drops)).has_value());
        CHECK(drops == 0);
        { auto gone = std::move(rx); }
        CHECK(drops == 1);
    }
}

TEST_CASE("oneshot: closed() completes when the receiver goes", "[oneshot]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        auto h = eddy::spawn([](eddy::oneshot::sender<int> tx) -> eddy::task<bool> {
            co_await tx.closed();
            co_return tx.is_closed();
        }(std::move(tx)));
        co_await settle();
        { auto gone = std::move(rx); }
        co_return co_await h;
    }());
    CHECK(ok);
}

TEST_CASE("oneshot: a task aborted while awaiting loses no value", "[oneshot][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        auto h = eddy::spawn([](eddy::oneshot::receiver<int>* rx) -> eddy::task<> {
            (void)co_await *rx;
            FAIL("received");
        }(&rx));
        co_await settle();
        CHECK(tx.send(11).has_value());         // wakes the waiting task...
        co_await eddy::test::abort_and_join(h); // ...which is cancelled before it runs
        auto v = co_await rx;
        CHECK(v.value() == 11);
    }());
}

TEST_CASE("oneshot: a closed() waiter that is aborted withdraws", "[oneshot][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        auto h = eddy::spawn([](eddy::oneshot::sender<int>* tx) -> eddy::task<> {
            co_await tx->closed();
            FAIL("closed() completed");
        }(&tx));
        co_await settle();
        co_await eddy::test::abort_and_join(h);
        rx.close(); // nobody to wake
        CHECK(tx.is_closed());
        co_await tx.closed(); // ready now
    }());
}

TEST_CASE("oneshot: blocking_recv on a plain thread against a task", "[oneshot][blocking]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    for (int round = 0; round < 50; ++round) {
        auto [tx, rx] = eddy::oneshot::channel<int>();
        int got = -1;
        std::thread t([&got, rx = std::move(rx)]() mutable {
            auto r = rx.blocking_recv();
            got = r ? *r : -2;
        });
        rt.block_on([](eddy::oneshot::sender<int> tx, int round) -> eddy::task<> {
            if (round % 2 == 0)
                co_await eddy::yield_now();
            (void)tx.send(round);
        }(std::move(tx), round));
        t.join();
        REQUIRE(got == round);
    }
    auto [tx, rx] = eddy::oneshot::channel<int>();
    std::thread t([tx = std::move(tx)]() mutable { (void)tx; });
    t.join(); // dropped unsent
    CHECK(rx.blocking_recv().error() == eddy::errc::closed);
    rt.block_on([](eddy::oneshot::receiver<int>* rx) -> eddy::task<> {
        CHECK_THROWS_AS(rx->blocking_recv(), std::logic_error);
        co_return;
    }(&rx));
}

TEST_CASE("oneshot: 1,000 channels raced across threads deliver exactly once",
          "[oneshot][stress]") {
    auto rt = make_rt(true);
    int delivered = rt.block_on([]() -> eddy::task<int> {
        int n = 0;
        for (int i = 0; i < 1000; ++i) {
            auto [tx, rx] = eddy::oneshot::channel<int>();
            auto h = eddy::spawn([](eddy::oneshot::sender<int> tx, int i) -> eddy::task<> {
                (void)tx.send(i);
                co_return;
            }(std::move(tx), i));
            auto v = co_await rx;
            if (v.has_value() && *v == i)
                ++n;
            co_await h;
        }
        co_return n;
    }());
    CHECK(delivered == 1000);
}

TEST_CASE("oneshot: send racing the receiver's drop destroys the value exactly once",
          "[oneshot][stress]") {
    for (int round = 0; round < 200; ++round) {
        std::atomic<int> drops{0};
        auto [tx, rx] = eddy::oneshot::channel<atomic_drop_counter>();
        std::thread sender([&drops, tx = std::move(tx)]() mutable {
            auto r = tx.send(atomic_drop_counter(&drops));
            (void)r; // on failure the value comes back and dies with r
        });
        std::thread receiver([rx = std::move(rx)]() mutable {
            if (rx.try_recv().has_value())
                return;
            auto gone = std::move(rx);
        });
        sender.join();
        receiver.join();
        REQUIRE(drops.load() == 1);
    }
}
