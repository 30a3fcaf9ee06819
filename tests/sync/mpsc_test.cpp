#include <eddy/clock.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/sync/mpsc.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/manual_event.hpp"
#include "support/runtimes.hpp"
#include "support/threads.hpp"
#include "support/throws.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;

using eddy::test::atomic_drop_counter;

namespace {

using eddy::test::make_rt;
using eddy::test::settle;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define EDDY_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define EDDY_TEST_SANITIZED 1
#endif
#endif

#if defined(EDDY_TEST_SANITIZED)
constexpr std::uint64_t stress_per_producer = 50'000;
#else
constexpr std::uint64_t stress_per_producer = 1'000'000;
#endif

using counted = atomic_drop_counter;

} // namespace

TEST_CASE("mpsc: messages arrive in order, then nullopt once all senders are gone", "[mpsc]") {
    const bool multi = GENERATE(false, true);
    const bool bounded = GENERATE(false, true);
    auto rt = make_rt(multi);
    auto got = rt.block_on([](bool bounded) -> eddy::task<std::vector<int>> {
        std::vector<int> out;
        if (bounded) {
            auto [tx, rx] = eddy::mpsc::channel<int>(4);
            auto h = eddy::spawn([](eddy::mpsc::sender<int> tx0) -> eddy::task<> {
                auto tx = std::move(tx0); // dies at the end of the body, not with the frame
                for (int i = 0; i < 100; ++i) {
                    auto r = co_await tx.send(i);
                    if (!r) // no Catch2 macros on workers: they are not thread-safe
                        throw std::runtime_error("send failed");
                }
            }(std::move(tx)));
            while (auto v = co_await rx.recv())
                out.push_back(*v);
            co_await h;
        } else {
            auto [tx, rx] = eddy::mpsc::unbounded_channel<int>();
            auto h = eddy::spawn([](eddy::mpsc::unbounded_sender<int> tx0) -> eddy::task<> {
                auto tx = std::move(tx0);
                for (int i = 0; i < 100; ++i) {
                    if (!tx.send(i))
                        throw std::runtime_error("send failed");
                    if (i % 10 == 0)
                        co_await eddy::yield_now();
                }
            }(std::move(tx)));
            while (auto v = co_await rx.recv())
                out.push_back(*v);
            co_await h;
        }
        co_return out;
    }(bounded));
    REQUIRE(got.size() == 100);
    for (int i = 0; i < 100; ++i)
        REQUIRE(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("mpsc: capacity 0 is rejected", "[mpsc]") {
    CHECK_THROWS_AS(eddy::mpsc::channel<int>(0), std::invalid_argument);
}

TEST_CASE("mpsc: try_send and try_recv report full, empty and closed", "[mpsc]") {
    auto [tx, rx] = eddy::mpsc::channel<std::unique_ptr<int>>(2);
    CHECK(rx.try_recv().error() == eddy::errc::empty);
    CHECK(tx.try_send(std::make_unique<int>(1)).has_value());
    CHECK(tx.try_send(std::make_unique<int>(2)).has_value());
    CHECK(tx.capacity() == 0);
    CHECK(tx.max_capacity() == 2);
    auto full = tx.try_send(std::make_unique<int>(3));
    CHECK(full.error() == eddy::errc::full);
    REQUIRE(full.rejected() != nullptr);
    CHECK(*full.rejected() == 3); // handed back intact
    auto a = rx.try_recv();
    REQUIRE(a.has_value());
    CHECK(**a == 1);
    CHECK(tx.capacity() == 1);
    rx.close();
    CHECK(tx.is_closed());
    auto closed = tx.try_send(std::make_unique<int>(4));
    CHECK(closed.error() == eddy::errc::closed);
    CHECK(*closed.rejected() == 4);
    auto b = rx.try_recv(); // buffered messages survive close()
    REQUIRE(b.has_value());
    CHECK(**b == 2);
    CHECK(rx.try_recv().error() == eddy::errc::closed);
    CHECK_THROWS_AS((void)eddy::mpsc::send_result<int>().rejected(), std::logic_error);
}

TEST_CASE("mpsc: unbounded try_recv reports closed after the last sender", "[mpsc]") {
    auto [tx, rx] = eddy::mpsc::unbounded_channel<int>();
    auto tx2 = tx.clone();
    CHECK(tx.send(1).has_value());
    CHECK(tx2.send(2).has_value());
    { auto gone = std::move(tx); }
    CHECK(rx.try_recv().value() == 1);
    CHECK(rx.try_recv().value() == 2);
    CHECK(rx.try_recv().error() == eddy::errc::empty); // tx2 still alive
    { auto gone = std::move(tx2); }
    CHECK(rx.try_recv().error() == eddy::errc::closed);
}

TEST_CASE("mpsc: dropping the receiver destroys buffered messages and closes senders", "[mpsc]") {
    std::atomic<int> drops{0};
    auto [tx, rx] = eddy::mpsc::channel<counted>(8);
    for (int i = 0; i < 5; ++i)
        REQUIRE(tx.try_send(counted(&drops)).has_value());
    CHECK(drops == 0);
    { auto gone = std::move(rx); }
    CHECK(drops == 5);
    CHECK(tx.is_closed());
    auto r = tx.try_send(counted(&drops));
    CHECK(r.error() == eddy::errc::closed);
    CHECK(drops == 5); // handed back, not destroyed
}

TEST_CASE("mpsc: 4 producers x many messages, each received once in per-producer order",
          "[mpsc][stress]") {
    const bool bounded = GENERATE(true, false);
    auto rt = make_rt(true);
    constexpr int producers = 4;
    const std::uint64_t per = stress_per_producer;
    auto ok = rt.block_on([](bool bounded, std::uint64_t per) -> eddy::task<bool> {
        std::vector<std::uint64_t> next(producers, 0);
        std::uint64_t total = 0;
        bool in_order = true;
        auto check = [&](std::uint64_t v) {
            const std::uint64_t p = v >> 32;
            const std::uint64_t seq = v & 0xffffffffU;
            if (p >= producers || next[p] != seq)
                in_order = false;
            else
                ++next[p];
            ++total;
        };
        std::vector<eddy::join_handle<void>> hs;
        if (bounded) {
            auto [tx, rx] = eddy::mpsc::channel<std::uint64_t>(1024);
            for (std::uint64_t p = 0; p < producers; ++p) {
                hs.push_back(eddy::spawn([](eddy::mpsc::sender<std::uint64_t> tx0, std::uint64_t p,
                                            std::uint64_t per) -> eddy::task<> {
                    auto tx = std::move(tx0);
                    for (std::uint64_t i = 0; i < per; ++i) {
                        auto r = co_await tx.send((p << 32) | i);
                        if (!r)
                            throw std::runtime_error("send failed");
                    }
                }(tx.clone(), p, per)));
            }
            { auto gone = std::move(tx); }
            std::vector<std::uint64_t> batch;
            for (;;) {
                // Mix single and batched receives.
                if (total % 3 == 0) {
                    batch.clear();
                    const std::size_t n = co_await rx.recv_many(batch, 64);
                    if (n == 0)
                        break;
                    for (auto v : batch)
                        check(v);
                } else {
                    auto v = co_await rx.recv();
                    if (!v)
                        break;
                    check(*v);
                }
            }
        } else {
            auto [tx, rx] = eddy::mpsc::unbounded_channel<std::uint64_t>();
            for (std::uint64_t p = 0; p < producers; ++p) {
                hs.push_back(eddy::spawn([](eddy::mpsc::unbounded_sender<std::uint64_t> tx0,
                                            std::uint64_t p, std::uint64_t per) -> eddy::task<> {
                    auto tx = std::move(tx0);
                    for (std::uint64_t i = 0; i < per; ++i) {
                        if (!tx.send((p << 32) | i))
                            throw std::runtime_error("send failed");
                        if (i % 256 == 0)
                            co_await eddy::yield_now();
                    }
                }(tx.clone(), p, per)));
            }
            { auto gone = std::move(tx); }
            while (auto v = co_await rx.recv())
                check(*v);
        }
        for (auto& h : hs)
            co_await h;
        co_return in_order&& total == producers* per;
    }(bounded, per));
    CHECK(ok);
}

TEST_CASE("mpsc: receiver dropped while senders are blocked on a full channel", "[mpsc]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    std::atomic<int> drops{0};
    auto closed_count = rt.block_on([](std::atomic<int>* drops) -> eddy::task<int> {
        auto [tx, rx] = eddy::mpsc::channel<counted>(1);
        REQUIRE(tx.try_send(counted(drops)).has_value());
        std::vector<eddy::join_handle<int>> hs;
        for (int i = 0; i < 3; ++i) {
            hs.push_back(eddy::spawn([](eddy::mpsc::sender<counted> tx0,
                                        std::atomic<int>* drops) -> eddy::task<int> {
                auto tx = std::move(tx0);
                auto r = co_await tx.send(counted(drops));
                if (r.has_value())
                    co_return 0;
                // The value comes back to us on close.
                co_return r.error() == eddy::errc::closed&& r.rejected().count != nullptr ? 1 : 0;
            }(tx.clone(), drops)));
        }
        co_await settle(8);
        { auto gone = std::move(rx); }
        int closed = 0;
        for (auto& h : hs)
            closed += co_await h;
        co_return closed;
    }(&drops));
    CHECK(closed_count == 3);
    CHECK(drops == 4); // the buffered one and the three handed back, each exactly once
}

TEST_CASE("mpsc: the receiver waiting when the last sender goes sees nullopt", "[mpsc]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    bool ended = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::mpsc::channel<int>(4);
        auto h = eddy::spawn([](eddy::mpsc::receiver<int> rx0) -> eddy::task<bool> {
            auto rx = std::move(rx0);
            auto a = co_await rx.recv();
            auto b = co_await rx.recv();
            co_return a == 7 && !b.has_value();
        }(std::move(rx)));
        auto tx2 = tx.clone();
        co_await settle();
        REQUIRE(tx.try_send(7).has_value());
        co_await settle();
        { auto gone = std::move(tx); }
        co_await settle();
        { auto gone = std::move(tx2); }
        co_return co_await h;
    }());
    CHECK(ended);
}

TEST_CASE("mpsc: a task aborted while blocked in send enqueues nothing", "[mpsc][cancel]") {
    auto rt = make_rt(false);
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<counted>(1);
        REQUIRE(tx.try_send(counted(drops)).has_value());
        auto h = eddy::spawn(
            [](eddy::mpsc::sender<counted>* tx, std::atomic<int>* drops) -> eddy::task<> {
                auto r = co_await tx->send(counted(drops));
                (void)r;
                FAIL("the blocked send completed");
            }(&tx, drops));
        co_await settle();
        co_await eddy::test::abort_and_join(h);
        CHECK(drops->load() == 1); // the blocked value, destroyed with the frame
        auto first = rx.try_recv();
        REQUIRE(first.has_value());
        first = eddy::errc::empty; // destroy the buffered one
        CHECK(drops->load() == 2);
        CHECK(rx.try_recv().error() == eddy::errc::empty); // nothing else was enqueued
        CHECK(tx.capacity() == 1);
    }(&drops));
}

TEST_CASE("mpsc: a task aborted while blocked in recv loses no message", "[mpsc][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(4);
        // Aborted while waiting, nothing sent.
        {
            auto h = eddy::spawn([](eddy::mpsc::receiver<int>* rx) -> eddy::task<> {
                (void)co_await rx->recv();
                FAIL("received");
            }(&rx));
            co_await settle();
            co_await eddy::test::abort_and_join(h);
        }
        // Woken by a send, aborted before it ran: the message stays queued.
        {
            auto h = eddy::spawn([](eddy::mpsc::receiver<int>* rx) -> eddy::task<> {
                (void)co_await rx->recv();
                FAIL("received");
            }(&rx));
            co_await settle();
            REQUIRE(tx.try_send(5).has_value());    // wakes the receiver task...
            co_await eddy::test::abort_and_join(h); // ...which is cancelled before it runs
        }
        auto v = co_await rx.recv();
        CHECK(v == 5);
        CHECK(rx.try_recv().error() == eddy::errc::empty);
    }());
}

TEST_CASE("mpsc: a send granted just before its task is aborted was delivered once",
          "[mpsc][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        REQUIRE(tx.try_send(1).has_value());
        auto h = eddy::spawn([](eddy::mpsc::sender<int>* tx) -> eddy::task<> {
            (void)co_await tx->send(2);
            FAIL("resumed");
        }(&tx));
        co_await settle();
        auto a = rx.try_recv(); // frees the slot: the suspended send is granted (delivered)
        CHECK(a.value() == 1);
        co_await eddy::test::abort_and_join(h); // before the sender task ran again
        auto b = rx.try_recv();
        CHECK(b.value() == 2);
        CHECK(rx.try_recv().error() == eddy::errc::empty);
        CHECK(tx.capacity() == 1); // no slot lost
    }());
}

TEST_CASE("mpsc: a permit granted to an aborted task passes to the next in line",
          "[mpsc][cancel]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        REQUIRE(tx.try_send(1).has_value());
        auto first = eddy::spawn([](eddy::mpsc::sender<int>* tx) -> eddy::task<> {
            auto p = co_await tx->reserve();
            (void)p;
            FAIL("first reserve resumed");
        }(&tx));
        co_await settle();
        auto second = eddy::spawn([](eddy::mpsc::sender<int>* tx) -> eddy::task<> {
            auto p = co_await tx->reserve();
            REQUIRE(p.has_value());
            p->send(3);
        }(&tx));
        co_await settle();
        CHECK(rx.try_recv().value() == 1); // grants the slot to `first`
        // Cancelled before it resumed: the permit moves on.
        co_await eddy::test::abort_and_join(first);
        co_await second;
        auto v = co_await rx.recv();
        CHECK(v == 3);
        CHECK(tx.capacity() == 1);
    }());
}

TEST_CASE("mpsc: permits reserve capacity and return it when dropped", "[mpsc]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        {
            auto p = co_await tx.reserve();
            REQUIRE(p.has_value());
            CHECK(tx.try_send(1).error() == eddy::errc::full);
            CHECK(tx.try_reserve().error() == eddy::errc::full);
        } // dropped unused
        CHECK(tx.capacity() == 1);
        auto p = tx.try_reserve();
        REQUIRE(p.has_value());
        // A permit keeps the channel open after the last sender is gone.
        { auto gone = std::move(tx); }
        CHECK(rx.try_recv().error() == eddy::errc::empty);
        p->send(9);
        auto v = co_await rx.recv();
        CHECK(v == 9);
        auto end = co_await rx.recv();
        CHECK(!end.has_value());
    }());
}

TEST_CASE("mpsc: each message taken from the receiver's batch frees its slot at once", "[mpsc]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(3);
        for (int i = 0; i < 3; ++i)
            CHECK(tx.try_send(i).has_value());
        CHECK(tx.try_send(99).error() == eddy::errc::full);

        // The first recv takes all three into its batch; each recv frees one slot, and a sender
        // sees it at once (try_send here), not only after the batch is used up.
        auto a = co_await rx.recv();
        CHECK(a == 0);
        CHECK(tx.capacity() == 1);
        CHECK(tx.try_send(3).has_value());
        CHECK(tx.try_send(99).error() == eddy::errc::full);
        auto b = co_await rx.recv();
        CHECK(b == 1);
        CHECK(tx.capacity() == 1);
        CHECK(tx.try_send(4).has_value());
        CHECK(tx.try_send(99).error() == eddy::errc::full);

        // A sender suspended on the full channel gets the slot of the next message taken, and
        // the receiver then stops receiving: the sender must not wait for it to come back.
        bool sent = false;
        auto h = eddy::spawn([](eddy::mpsc::sender<int> s, bool* done) -> eddy::task<> {
            auto r = co_await s.send(5);
            *done = r.has_value();
        }(tx.clone(), &sent));
        co_await settle();
        CHECK(!sent);
        auto c = co_await rx.recv(); // the last of the first batch
        CHECK(c == 2);
        co_await h;
        CHECK(sent);
        CHECK(tx.try_send(99).error() == eddy::errc::full);

        // The rest in order, and exactly the capacity's worth.
        std::vector<int> rest;
        for (int i = 0; i < 3; ++i) {
            auto v = co_await rx.recv();
            rest.push_back(v.value_or(-1));
        }
        CHECK(rest == std::vector<int>{3, 4, 5});
        CHECK(tx.capacity() == 3);
    }());
}

TEST_CASE("mpsc: close wakes suspended senders and reserves with closed", "[mpsc]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        REQUIRE(tx.try_send(1).has_value());
        auto s = eddy::spawn([](eddy::mpsc::sender<int>* tx) -> eddy::task<int> {
            auto r = co_await tx->send(2);
            co_return r.has_value() ? -1 : std::move(r).rejected();
        }(&tx));
        auto q = eddy::spawn([](eddy::mpsc::sender<int>* tx) -> eddy::task<bool> {
            auto p = co_await tx->reserve();
            co_return p.error() == eddy::errc::closed;
        }(&tx));
        auto c = eddy::spawn([](eddy::mpsc::sender<int>* tx) -> eddy::task<bool> {
            co_await tx->closed();
            co_return tx->is_closed();
        }(&tx));
        co_await settle(8);
        CHECK_FALSE(tx.is_closed());
        rx.close();
        int back = co_await s;
        CHECK(back == 2);
        bool reserve_closed = co_await q;
        CHECK(reserve_closed);
        bool closed_seen = co_await c;
        CHECK(closed_seen);
        auto v = co_await rx.recv();
        CHECK(v == 1);
        auto end = co_await rx.recv();
        CHECK(!end.has_value());
    }());
}

TEST_CASE("mpsc: recv_many takes up to the limit", "[mpsc]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(8);
        for (int i = 0; i < 5; ++i)
            REQUIRE(tx.try_send(i).has_value());
        std::vector<int> buf{-1};
        std::size_t n = co_await rx.recv_many(buf, 3);
        CHECK(n == 3);
        CHECK(buf == std::vector<int>{-1, 0, 1, 2});
        n = co_await rx.recv_many(buf, 0);
        CHECK(n == 0);
        n = co_await rx.recv_many(buf, 10);
        CHECK(n == 2);
        CHECK(tx.capacity() == 8);
        auto h = eddy::spawn([](eddy::mpsc::sender<int> tx0) -> eddy::task<> {
            auto tx = std::move(tx0);
            co_await eddy::yield_now();
            (void)co_await tx.send(42);
        }(std::move(tx)));
        buf.clear();
        n = co_await rx.recv_many(buf, 10); // waits for the send
        CHECK(n == 1);
        CHECK(buf == std::vector<int>{42});
        n = co_await rx.recv_many(buf, 10);
        CHECK(n == 0); // closed and drained
        co_await h;
    }());
}

TEST_CASE("mpsc: blocking_send and blocking_recv from plain threads", "[mpsc][blocking]") {
    const bool multi = GENERATE(false, true);
    auto rt = make_rt(multi);
    constexpr int n = 2000;
    // Thread sends, task receives.
    {
        auto [tx, rx] = eddy::mpsc::channel<int>(4);
        std::thread producer([tx = std::move(tx)]() mutable {
            for (int i = 0; i < n; ++i) {
                if (!tx.blocking_send(i))
                    throw std::runtime_error("blocking_send failed");
            }
        });
        long sum = rt.block_on([](eddy::mpsc::receiver<int>* rx) -> eddy::task<long> {
            long s = 0;
            while (auto v = co_await rx->recv())
                s += *v;
            co_return s;
        }(&rx));
        producer.join();
        CHECK(sum == long(n) * (n - 1) / 2);
    }
    // Task sends, thread receives.
    {
        auto [tx, rx] = eddy::mpsc::channel<int>(4);
        long sum = 0;
        std::thread consumer([&sum, rx = std::move(rx)]() mutable {
            while (auto v = rx.blocking_recv())
                sum += *v;
        });
        rt.block_on([](eddy::mpsc::sender<int> tx0) -> eddy::task<> {
            auto tx = std::move(tx0);
            for (int i = 0; i < n; ++i)
                (void)co_await tx.send(i);
        }(std::move(tx)));
        consumer.join();
        CHECK(sum == long(n) * (n - 1) / 2);
    }
    // blocking_send fails with the value back once the receiver goes.
    {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        REQUIRE(tx.try_send(0).has_value());
        auto* txp = &tx;
        std::thread producer([txp] {
            auto r = txp->blocking_send(5);
            CHECK(r.error() == eddy::errc::closed);
            CHECK(r.rejected() == 5);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        { auto gone = std::move(rx); }
        producer.join();
    }
}

TEST_CASE("mpsc: blocking calls on a runtime thread are refused", "[mpsc][blocking]") {
    auto rt = make_rt(false);
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        CHECK_THROWS_AS(tx.blocking_send(1), std::logic_error);
        CHECK_THROWS_AS(rx.blocking_recv(), std::logic_error);
        co_return;
    }());
}

TEST_CASE("mpsc: an always-ready recv loop lets other tasks run", "[mpsc][coop]") {
    auto rt = make_rt(false);
    bool other_ran_during_loop = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::mpsc::unbounded_channel<int>();
        constexpr int n = 10'000;
        for (int i = 0; i < n; ++i)
            REQUIRE(tx.send(i).has_value());
        auto flag = std::make_shared<std::atomic<bool>>(false);
        auto h = eddy::spawn([flag]() -> eddy::task<> {
            flag->store(true);
            co_return;
        });
        bool seen = false;
        for (int i = 0; i < n; ++i) {
            auto v = co_await rx.recv(); // always ready
            REQUIRE(v == i);
            if (flag->load() && i < n - 1)
                seen = true;
        }
        co_await h;
        co_return seen;
    }());
    CHECK(other_ran_during_loop);
}

TEST_CASE("mpsc: an always-ready send loop lets other tasks run", "[mpsc][coop]") {
    auto rt = make_rt(false);
    bool other_ran_during_loop = rt.block_on([]() -> eddy::task<bool> {
        auto [tx, rx] = eddy::mpsc::channel<int>(100'000);
        auto flag = std::make_shared<std::atomic<bool>>(false);
        auto h = eddy::spawn([flag]() -> eddy::task<> {
            flag->store(true);
            co_return;
        });
        bool seen = false;
        for (int i = 0; i < 10'000; ++i) {
            auto r = co_await tx.send(i);
            REQUIRE(r.has_value());
            seen = seen || flag->load();
        }
        co_await h;
        co_return seen;
    }());
    CHECK(other_ran_during_loop);
}

TEST_CASE("mpsc: runtime shutdown with blocked senders and receivers frees everything",
          "[mpsc][cancel]") {
    const bool multi = GENERATE(false, true);
    std::atomic<int> drops{0};
    std::atomic<int> started{0};
    // The channels outlive the runtime, so the tasks are cancelled while still suspended.
    auto [tx, rx] = eddy::mpsc::channel<counted>(1);
    REQUIRE(tx.try_send(counted(&drops)).has_value());
    auto [tx2, rx2] = eddy::mpsc::channel<int>(1);
    {
        auto rt = make_rt(multi);
        for (int i = 0; i < 4; ++i) {
            rt.spawn([](eddy::mpsc::sender<counted> tx, std::atomic<int>* drops,
                        std::atomic<int>* started) -> eddy::task<> {
                  started->fetch_add(1);
                  (void)co_await tx.send(counted(drops));
              }(tx.clone(), &drops, &started))
                .detach();
        }
        rt.spawn([](eddy::mpsc::receiver<int> rx, std::atomic<int>* started) -> eddy::task<> {
              started->fetch_add(1);
              (void)co_await rx.recv();
          }(std::move(rx2), &started))
            .detach();
        if (!multi) {
            rt.block_on(settle());
        }
        REQUIRE(eddy::test::eventually([&] { return started.load() == 5; }));
    } // runtime destroyed: the suspended tasks are cancelled
    CHECK(drops == 4);
    CHECK(tx2.is_closed()); // the cancelled receiver task dropped its receiver
    CHECK(rx.try_recv().has_value());
    CHECK(drops == 5);
    CHECK(rx.try_recv().error() == eddy::errc::empty);
}

TEST_CASE("mpsc: unbounded messages taken in a batch survive close and die with the receiver",
          "[mpsc]") {
    std::atomic<int> drops{0};
    auto [tx, rx] = eddy::mpsc::unbounded_channel<counted>();
    for (int i = 0; i < 5; ++i)
        REQUIRE(tx.send(counted(&drops)).has_value());
    {
        auto first = rx.try_recv(); // takes the whole queue into the receiver's batch
        REQUIRE(first.has_value());
    }
    CHECK(drops == 1);
    REQUIRE(tx.send(counted(&drops)).has_value());
    CHECK(rx.size() == 5);
    rx.close();
    CHECK(tx.send(counted(&drops)).error() == eddy::errc::closed);
    CHECK(drops == 2); // the refused one, handed back and destroyed
    {
        auto second = rx.try_recv();
        REQUIRE(second.has_value());
    }
    CHECK(drops == 3);
    { auto gone = std::move(rx); }
    CHECK(drops == 7); // three left in the batch, one in the queue
}

TEST_CASE("mpsc: receiver dropped while senders race to send", "[mpsc][stress]") {
    auto rt = make_rt(true);
    for (int round = 0; round < 50; ++round) {
        std::atomic<int> made{0};
        std::atomic<int> drops{0};
        rt.block_on([](std::atomic<int>* made, std::atomic<int>* drops) -> eddy::task<> {
            auto [tx, rx] = eddy::mpsc::channel<counted>(4);
            std::vector<eddy::join_handle<void>> hs;
            for (int p = 0; p < 3; ++p) {
                hs.push_back(eddy::spawn([](eddy::mpsc::sender<counted> tx0, std::atomic<int>* made,
                                            std::atomic<int>* drops) -> eddy::task<> {
                    auto tx = std::move(tx0);
                    for (;;) {
                        made->fetch_add(1);
                        auto r = co_await tx.send(counted(drops));
                        if (!r)
                            co_return; // closed: the value came back and dies here
                    }
                }(tx.clone(), made, drops)));
            }
            { auto gone = std::move(tx); }
            auto consumer = eddy::spawn([](eddy::mpsc::receiver<counted> rx0) -> eddy::task<> {
                auto rx = std::move(rx0);
                for (int i = 0; i < 20; ++i)
                    (void)co_await rx.recv();
                // rx dropped here, with senders suspended or mid-send
            }(std::move(rx)));
            co_await consumer;
            for (auto& h : hs)
                co_await h;
        }(&made, &drops));
        REQUIRE(drops.load() == made.load()); // every value destroyed exactly once
    }
}

TEST_CASE("mpsc: blocking_send is allowed inside spawn_blocking", "[mpsc][blocking]") {
    auto rt = make_rt(true);
    int sum = rt.block_on([]() -> eddy::task<int> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        auto h = eddy::spawn_blocking([tx0 = std::move(tx)]() mutable {
            auto tx = std::move(tx0); // gone when the closure returns, not with the closure
            for (int i = 1; i <= 10; ++i) {
                if (!tx.blocking_send(i))
                    throw std::runtime_error("blocking_send failed");
            }
        });
        int s = 0;
        while (auto v = co_await rx.recv())
            s += *v;
        co_await h;
        co_return s;
    }());
    CHECK(sum == 55);
}

namespace {
struct carries_sender {
    eddy::mpsc::sender<carries_sender> tx;
};
} // namespace

TEST_CASE("mpsc: a message may hold the channel's last sender", "[mpsc]") {
    // Destroying such a message drops the sender, which takes the channel's lock: messages are
    // never destroyed under it.
    {
        auto [tx, rx] = eddy::mpsc::channel<carries_sender>(2);
        auto self = tx.clone();
        REQUIRE(tx.try_send(carries_sender{std::move(self)}).has_value());
        { auto gone = std::move(tx); }
        { auto gone = std::move(rx); } // destroys the message, and with it the last sender
    }
    {
        auto [tx, rx] = eddy::mpsc::channel<carries_sender>(2);
        auto self = tx.clone();
        REQUIRE(tx.try_send(carries_sender{std::move(self)}).has_value());
        { auto gone = std::move(tx); }
        CHECK(rx.try_recv().has_value()); // the received message dies here: last sender gone
        CHECK(rx.try_recv().error() == eddy::errc::closed);
    }
}

TEST_CASE("mpsc send_timeout hands the value back when no slot frees in time", "[mpsc]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<std::string>(1);
        auto first = co_await tx.send_timeout("a", 10ms);
        CHECK(first.has_value());
        const eddy::instant start = eddy::clock::now();
        auto second = co_await tx.send_timeout("b", 10ms); // full: nobody receives
        REQUIRE_FALSE(second.has_value());
        CHECK(second.error() == eddy::errc::timed_out);
        CHECK(second.rejected() == "b");
        CHECK(eddy::clock::now() - start == 10ms);
        // A receiver frees the slot in time: the send goes through.
        auto drain = eddy::spawn([](eddy::mpsc::receiver<std::string> rx) -> eddy::task<int> {
            int n = 0;
            co_await eddy::sleep(5ms);
            while (auto m = co_await rx.recv())
                ++n;
            co_return n;
        }(std::move(rx)));
        auto third = co_await tx.send_timeout("c", 10ms);
        CHECK(third.has_value());
        tx = {};
        const int received = co_await drain;
        CHECK(received == 2);
    }());
}

TEST_CASE("mpsc send_timeout on a closed channel", "[mpsc]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<int>(1);
        rx.close();
        auto r = co_await tx.send_timeout(7, 10ms);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == eddy::errc::closed);
        CHECK(r.rejected() == 7);
    }());
}
