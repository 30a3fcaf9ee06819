// Combinators over channels: a channel operation that loses a select or a timeout loses no
// message and enqueues nothing half-done.

#include <eddy/join.hpp>
#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/mpsc.hpp>
#include <eddy/sync/mutex.hpp>
#include <eddy/sync/oneshot.hpp>
#include <eddy/testing.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/time.hpp"

using namespace std::chrono_literals;

TEST_CASE("select between recv and a sleep 100,000 times loses no message",
          "[select][mpsc][stress]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    constexpr long messages = 100'000;
    const long received = rt.block_on([]() -> eddy::task<long> {
        auto [tx, rx] = eddy::mpsc::channel<long>(16);
        auto producer = eddy::spawn([](eddy::mpsc::sender<long> param) -> eddy::task<> {
            // A parameter lives as long as the task's frame (until the join handle goes): move
            // the sender into a local so the channel closes when the loop ends.
            auto tx = std::move(param);
            for (long i = 0; i < messages; ++i) {
                auto r = co_await tx.send(i);
                if (!r)
                    co_return;
                if (i % 64 == 0)
                    co_await eddy::yield_now(); // let the sleep branch win now and then
            }
        }(std::move(tx)));
        long next = 0;
        long out_of_order = 0;
        long sleeps_won = 0;
        for (;;) {
            auto r = co_await eddy::select(rx.recv(), eddy::sleep(std::chrono::microseconds(50)));
            if (r.index() == 1) {
                ++sleeps_won;
                continue;
            }
            auto& m = std::get<0>(r);
            if (!m)
                break; // closed: the producer is done
            if (*m != next)
                ++out_of_order;
            next = *m + 1;
        }
        co_await producer;
        co_return out_of_order == 0 ? next : -1;
    }());
    CHECK(received == messages);
}

TEST_CASE("a send that loses a select on a full channel enqueues nothing", "[select][mpsc]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<std::string>(1);
        auto first = co_await tx.send("kept");
        CHECK(first.has_value());
        auto r = co_await eddy::select(tx.send("lost"), eddy::sleep(5ms));
        CHECK(r.index() == 1);
        auto m = rx.try_recv();
        REQUIRE(m.has_value());
        CHECK(*m == "kept");
        CHECK(rx.try_recv().error() == eddy::errc::empty);
    }());
}

TEST_CASE("a recv timed out before a message arrives leaves the message for the next recv",
          "[timeout][mpsc]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(4);
        auto late = eddy::spawn([](eddy::mpsc::sender<int> tx) -> eddy::task<> {
            co_await eddy::sleep(10ms);
            (void)co_await tx.send(42);
        }(tx));
        auto r = co_await eddy::timeout(5ms, rx.recv());
        CHECK_FALSE(r.has_value());
        co_await late;
        auto m = co_await rx.recv();
        REQUIRE(m.has_value());
        CHECK(*m == 42);
    }());
}

TEST_CASE("channel and lock operations cancel cleanly at every suspension point",
          "[testing][mpsc][oneshot][mutex]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        // A producer that keeps the channel busy for a while.
        auto producer = eddy::spawn([](eddy::mpsc::sender<int> tx) -> eddy::task<> {
            for (int i = 0; i < 50; ++i) {
                co_await eddy::sleep(1ms);
                (void)co_await tx.send(i);
            }
        }(tx));
        auto rx_ptr = std::make_shared<eddy::mpsc::receiver<int>>(std::move(rx));
        // Named, not a temporary: GCC 12 destroys a temporary with a destructor (here, the
        // captured shared_ptr) twice when it appears inside a co_await expression.
        auto receive_three = [rx_ptr] {
            return [](std::shared_ptr<eddy::mpsc::receiver<int>> rx) -> eddy::task<> {
                for (int k = 0; k < 3; ++k)
                    (void)co_await rx->recv();
            }(rx_ptr);
        };
        auto points = co_await eddy::testing::cancel_at_every_suspension(receive_three);
        CHECK(points >= 1);
        eddy::mpsc::sender<int> sender = tx; // (clang 14 cannot capture a structured binding)
        auto send_one = [sender] {
            return [](eddy::mpsc::sender<int> tx) -> eddy::task<> {
                (void)co_await tx.send(-1);
            }(sender);
        };
        auto send_points = co_await eddy::testing::cancel_at_every_suspension(send_one);
        CHECK(send_points < 100'000); // every run ended, cancelled or complete
        producer.abort();
    }());
}
