#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/watch.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

using eddy::test::make_rt;
using eddy::test::settle;

TEST_CASE("watch: borrow sees the initial value, send replaces it", "[watch]") {
    auto [tx, rx] = eddy::watch::channel<std::string>("init");
    CHECK(*rx.borrow() == "init");
    CHECK_FALSE(rx.borrow().has_changed());
    CHECK(rx.has_changed().value() == false);
    CHECK(tx.send("one").has_value());
    CHECK(*tx.borrow() == "one");
    CHECK(rx.has_changed().value());
    {
        auto r = rx.borrow(); // does not mark seen
        CHECK(r.has_changed());
        CHECK(r->size() == 3);
    }
    CHECK(rx.has_changed().value());
    {
        auto r = rx.borrow_and_update();
        CHECK(r.has_changed());
        CHECK(*r == "one");
    }
    CHECK_FALSE(rx.has_changed().value());
    CHECK(tx.send_replace("two") == "one");
    tx.send_modify([](std::string& s) { s += "!"; });
    CHECK(*rx.borrow_and_update() == "two!");
    CHECK_FALSE(tx.send_if_modified([](std::string&) { return false; }));
    CHECK_FALSE(rx.has_changed().value());
    CHECK(tx.send_if_modified([](std::string& s) {
        s = "three";
        return true;
    }));
    CHECK(rx.has_changed().value());
    rx.mark_changed();
    CHECK(rx.has_changed().value());
}

TEST_CASE("watch: many sends coalesce into one changed()", "[watch]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::watch::channel<int>(0);
        for (int i = 1; i <= 100; ++i)
            REQUIRE(tx.send(i).has_value());
        auto r = co_await rx.changed();
        CHECK(r.has_value());
        CHECK(*rx.borrow() == 100);
        CHECK_FALSE(rx.has_changed().value()); // changed() marked it seen
        // A waiting receiver is woken once for a burst of sends.
        int wakes = 0;
        auto h = eddy::spawn([](eddy::watch::receiver<int> rx, int* wakes) -> eddy::task<int> {
            while (co_await rx.changed()) {
                ++*wakes;
            }
            co_return *rx.borrow();
        }(rx, &wakes));
        co_await settle();
        for (int i = 101; i <= 200; ++i)
            REQUIRE(tx.send(i).has_value());
        co_await settle();
        CHECK(wakes == 1);
        { auto gone = std::move(tx); }
        int last = co_await h;
        CHECK(last == 200);
        CHECK(wakes == 1);
    }());
}

TEST_CASE("watch: a receiver sees the latest value across threads", "[watch][stress]") {
    auto rt = make_rt(true);
    bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::watch::channel<int>(0);
        std::vector<eddy::join_handle<bool>> hs;
        for (int r = 0; r < 3; ++r) {
            hs.push_back(eddy::spawn([](eddy::watch::receiver<int> rx) -> eddy::task<bool> {
                int prev = -1;
                while (co_await rx.changed()) {
                    const int v = *rx.borrow_and_update();
                    if (v <= prev)
                        co_return false; // values only move forward
                    prev = v;
                }
                co_return *rx.borrow() == 20'000;
            }(rx)));
        }
        { auto gone = std::move(rx); }
        for (int i = 1; i <= 20'000; ++i) {
            tx.send_modify([i](int& v) { v = i; });
            if (i % 64 == 0)
                co_await eddy::yield_now();
        }
        { auto gone = std::move(tx); }
        bool all = true;
        for (auto& h : hs)
            all = (co_await h) && all;
        co_return all;
    }());
    CHECK(ok);
}

TEST_CASE("watch: send without receivers fails, closed() completes", "[watch]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::watch::channel<int>(1);
        auto rx2 = tx.subscribe();
        auto rx3 = rx2; // copy
        CHECK(tx.receiver_count() == 3);
        auto h = eddy::spawn([](eddy::watch::sender<int>* tx) -> eddy::task<bool> {
            co_await tx->closed();
            co_return tx->is_closed();
        }(&tx));
        co_await settle();
        { auto gone = std::move(rx); }
        { auto gone = std::move(rx2); }
        CHECK_FALSE(tx.is_closed());
        { auto gone = std::move(rx3); }
        bool closed = co_await h;
        CHECK(closed);
        auto r = tx.send(5);
        CHECK(r.error() == eddy::errc::closed);
        CHECK(r.rejected() == 5);
        CHECK(*tx.borrow() == 1);       // not stored
        CHECK(tx.send_replace(6) == 1); // always stores
        CHECK(*tx.borrow() == 6);
        auto again = tx.subscribe(); // receivers can come back
        CHECK(tx.send(7).has_value());
        CHECK(again.has_changed().value());
    }());
}

TEST_CASE("watch: changed() after the sender is gone", "[watch]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::watch::channel<int>(0);
        REQUIRE(tx.send(1).has_value());
        { auto gone = std::move(tx); }
        CHECK(rx.has_changed().error() == eddy::errc::closed);
        auto a = co_await rx.changed(); // the unseen value first
        CHECK(a.has_value());
        CHECK(*rx.borrow() == 1);
        auto b = co_await rx.changed();
        CHECK(b.error() == eddy::errc::closed);
        // A waiting receiver is woken by the drop.
        auto [tx2, rx2] = eddy::watch::channel<int>(0);
        auto h = eddy::spawn([](eddy::watch::receiver<int> rx) -> eddy::task<bool> {
            auto r = co_await rx.changed();
            co_return r.error() == eddy::errc::closed;
        }(std::move(rx2)));
        co_await settle();
        { auto gone = std::move(tx2); }
        bool closed = co_await h;
        CHECK(closed);
    }());
}

TEST_CASE("watch: an aborted changed() withdraws and loses no change", "[watch][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::watch::channel<int>(0);
        auto h = eddy::spawn([](eddy::watch::receiver<int>* rx) -> eddy::task<> {
            (void)co_await rx->changed();
            FAIL("resumed");
        }(&rx));
        co_await settle();
        REQUIRE(tx.send(1).has_value());        // wakes it...
        co_await eddy::test::abort_and_join(h); // ...but it is cancelled first
        CHECK(rx.has_changed().value());        // the change is still unseen
        auto r = co_await rx.changed();
        CHECK(r.has_value());
        // Aborted while waiting, nothing sent: a later send has nobody stale to wake.
        auto h2 = eddy::spawn([](eddy::watch::receiver<int>* rx) -> eddy::task<> {
            (void)co_await rx->changed();
            FAIL("resumed");
        }(&rx));
        co_await settle();
        co_await eddy::test::abort_and_join(h2);
        REQUIRE(tx.send(2).has_value());
        auto r2 = co_await rx.changed();
        CHECK(r2.has_value());
        CHECK(*rx.borrow() == 2);
    }());
}

TEST_CASE("watch: an always-ready changed() loop lets other tasks run", "[watch][coop]") {
    auto rt = make_rt(false);
    bool seen = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::watch::channel<int>(0);
        { auto gone = std::move(tx); } // changed() is now always ready (closed)
        auto flag = std::make_shared<std::atomic<bool>>(false);
        auto h = eddy::spawn([flag]() -> eddy::task<> {
            flag->store(true);
            co_return;
        });
        bool ran = false;
        for (int i = 0; i < 1000 && !ran; ++i) {
            (void)co_await rx.changed();
            ran = flag->load();
        }
        co_await h;
        co_return ran;
    }());
    CHECK(seen);
}
