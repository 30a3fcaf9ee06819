#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/semaphore.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

using eddy::test::current_thread_rt;
using eddy::test::make_rt;
using eddy::test::multi_thread_rt;
using eddy::test::settle;

TEST_CASE("semaphore try_acquire counts permits and permits return themselves", "[semaphore]") {
    eddy::semaphore s(3);
    CHECK(s.available_permits() == 3);
    {
        auto a = s.try_acquire();
        REQUIRE(a);
        CHECK(a->num_permits() == 1);
        auto b = s.try_acquire_many(2);
        REQUIRE(b);
        CHECK(s.available_permits() == 0);
        auto c = s.try_acquire();
        REQUIRE_FALSE(c);
        CHECK(c.error() == eddy::errc::empty);
        a->merge(std::move(*b));
        CHECK(a->num_permits() == 3);
        auto part = a->split(2);
        REQUIRE(part);
        CHECK(part->num_permits() == 2);
        CHECK(a->num_permits() == 1);
        CHECK_FALSE(a->split(5));
    }
    CHECK(s.available_permits() == 3);
    {
        auto f = s.try_acquire();
        REQUIRE(f);
        f->forget();
    }
    CHECK(s.available_permits() == 2);
    CHECK(s.forget_permits(5) == 2);
    CHECK(s.available_permits() == 0);
    s.add_permits(4);
    CHECK(s.available_permits() == 4);
    auto zero = s.try_acquire_many(0);
    CHECK(zero);
    CHECK_THROWS_AS(s.add_permits(eddy::semaphore::max_permits), std::logic_error);
    CHECK_THROWS_AS(eddy::semaphore(eddy::semaphore::max_permits + 1), std::logic_error);
    CHECK_THROWS_AS(s.acquire_many(eddy::semaphore::max_permits + 1), std::logic_error);

    eddy::semaphore other(1);
    auto x = s.try_acquire();
    auto y = other.try_acquire();
    REQUIRE(x);
    REQUIRE(y);
    CHECK_THROWS_AS(x->merge(std::move(*y)), std::logic_error);
}

TEST_CASE("semaphore acquire suspends until a permit is returned", "[semaphore]") {
    eddy::semaphore s(1);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
        auto held = co_await s->acquire();
        REQUIRE(held);
        int stage = 0;
        auto h = eddy::spawn([](eddy::semaphore* s, int* stage) -> eddy::task<> {
            auto p = co_await s->acquire();
            CHECK(p);
            *stage = 1;
        }(s, &stage));
        co_await settle();
        CHECK(stage == 0);
        held->release();
        co_await h;
        CHECK(stage == 1);
        CHECK(s->available_permits() == 1);
    }(&s));
}

TEST_CASE("semaphore never admits more holders than permits", "[semaphore]") {
    constexpr int permits = 3;
    constexpr int tasks = 24;
    constexpr int iterations = 200;
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::semaphore s(permits);
        std::atomic<int> inside{0};
        std::atomic<int> max_inside{0};
        std::atomic<int> total{0};
        auto rt = make_rt(flavor != 0);
        rt.block_on([](eddy::semaphore* s, std::atomic<int>* inside, std::atomic<int>* max_inside,
                       std::atomic<int>* total) -> eddy::task<> {
            std::vector<eddy::join_handle<void>> hs;
            for (int t = 0; t < tasks; ++t) {
                hs.push_back(eddy::spawn([](eddy::semaphore* s, std::atomic<int>* inside,
                                            std::atomic<int>* max_inside, std::atomic<int>* total,
                                            int t) -> eddy::task<> {
                    for (int i = 0; i < iterations; ++i) {
                        // Mix single and multi-permit requests.
                        const std::size_t n = (t % 3 == 0) ? 2 : 1;
                        auto p = co_await s->acquire_many(n);
                        if (!p)
                            continue; // counted by `total` (no Catch macros off the main thread)
                        const int now =
                            inside->fetch_add(static_cast<int>(n)) + static_cast<int>(n);
                        int seen = max_inside->load();
                        while (now > seen && !max_inside->compare_exchange_weak(seen, now)) {
                        }
                        if (i % 4 == 0)
                            co_await eddy::yield_now();
                        inside->fetch_sub(static_cast<int>(n));
                        total->fetch_add(1);
                    }
                }(s, inside, max_inside, total, t)));
            }
            for (auto& h : hs)
                co_await h;
        }(&s, &inside, &max_inside, &total));
        CHECK(max_inside.load() <= permits);
        CHECK(max_inside.load() >= 2);
        CHECK(total.load() == tasks * iterations);
        CHECK(s.available_permits() == permits);
    }
}

TEST_CASE("semaphore serves acquire_many in FIFO order: a large request blocks later small ones",
          "[semaphore]") {
    eddy::semaphore s(0);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
        std::vector<int> order;
        auto big = eddy::spawn([](eddy::semaphore* s, std::vector<int>* order) -> eddy::task<> {
            auto p = co_await s->acquire_many(3);
            REQUIRE(p);
            order->push_back(3);
        }(s, &order));
        co_await settle();
        auto small = eddy::spawn([](eddy::semaphore* s, std::vector<int>* order) -> eddy::task<> {
            auto p = co_await s->acquire();
            REQUIRE(p);
            order->push_back(1);
        }(s, &order));
        co_await settle();
        s->add_permits(2); // enough for the small one, not for the big one at the head
        co_await settle();
        CHECK(order.empty());
        CHECK(s->available_permits() == 0);
        auto barging = s->try_acquire();
        CHECK_FALSE(barging);
        s->add_permits(2); // big gets 3 (2 held + 1), small gets the last one
        co_await big;
        co_await small;
        CHECK(order == std::vector<int>{3, 1});
        CHECK(s->available_permits() == 4);
    }(&s));
}

TEST_CASE("semaphore close wakes waiters with errc::closed", "[semaphore]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::semaphore s(1);
        auto rt = make_rt(flavor != 0);
        rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
            auto held = co_await s->acquire();
            REQUIRE(held);
            std::atomic<int> closed{0};
            std::atomic<int> started{0};
            std::vector<eddy::join_handle<void>> hs;
            constexpr int waiters = 40; // more than one wake batch
            for (int i = 0; i < waiters; ++i) {
                hs.push_back(eddy::spawn([](eddy::semaphore* s, std::atomic<int>* closed,
                                            std::atomic<int>* started, int i) -> eddy::task<> {
                    started->fetch_add(1);
                    auto p = co_await s->acquire_many(1 + i % 2);
                    if (!p && p.error() == eddy::errc::closed)
                        closed->fetch_add(1);
                }(s, &closed, &started, i)));
            }
            while (started.load() != waiters)
                co_await eddy::yield_now();
            co_await settle();
            CHECK(closed.load() == 0);
            s->close();
            CHECK(s->is_closed());
            for (auto& h : hs)
                co_await h;
            CHECK(closed.load() == waiters);
            auto later = co_await s->acquire();
            REQUIRE_FALSE(later);
            CHECK(later.error() == eddy::errc::closed);
            auto tried = s->try_acquire();
            REQUIRE_FALSE(tried);
            CHECK(tried.error() == eddy::errc::closed);
            held->release(); // returning permits after close is allowed
            CHECK(s->available_permits() == 1);
        }(&s));
    }
}

TEST_CASE("semaphore: an aborted waiter returns the permits it was partly given", "[semaphore]") {
    eddy::semaphore s(0);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
        auto big = eddy::spawn([](eddy::semaphore* s) -> eddy::task<> {
            auto p = co_await s->acquire_many(3);
            FAIL("the aborted acquire completed");
        }(s));
        co_await settle();
        int small_done = 0;
        auto small = eddy::spawn([](eddy::semaphore* s, int* done) -> eddy::task<> {
            auto p = co_await s->acquire();
            REQUIRE(p);
            ++*done;
            p->forget();
        }(s, &small_done));
        co_await settle();
        s->add_permits(2); // held by `big`, at the head
        co_await settle();
        CHECK(s->available_permits() == 0);
        CHECK(small_done == 0);
        bool cancelled = co_await eddy::test::abort_and_join(big);
        CHECK(cancelled);
        co_await small; // got one of the two returned permits
        CHECK(small_done == 1);
        CHECK(s->available_permits() == 1);
    }(&s));
}

TEST_CASE("semaphore: a waiter aborted after being granted hands its permits on", "[semaphore]") {
    eddy::semaphore s(0);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
        int first_ran = 0;
        int second_ran = 0;
        auto first = eddy::spawn([](eddy::semaphore* s, int* ran) -> eddy::task<> {
            auto p = co_await s->acquire_many(2);
            ++*ran;
        }(s, &first_ran));
        co_await settle();
        auto second = eddy::spawn([](eddy::semaphore* s, int* ran) -> eddy::task<> {
            auto p = co_await s->acquire_many(2);
            REQUIRE(p);
            ++*ran;
        }(s, &second_ran));
        co_await settle();
        // Grant `first` (it is woken, not yet run) and cancel it in the same poll.
        s->add_permits(2);
        bool cancelled = co_await eddy::test::abort_and_join(first);
        CHECK(cancelled);
        co_await second;
        CHECK(first_ran == 0);
        CHECK(second_ran == 1);
        CHECK(s->available_permits() == 2);
    }(&s));
}

TEST_CASE("semaphore owned permits keep the semaphore alive inside spawned tasks", "[semaphore]") {
    auto rt = multi_thread_rt();
    rt.block_on([]() -> eddy::task<> {
        auto s = std::make_shared<eddy::semaphore>(2);
        std::vector<eddy::join_handle<int>> hs;
        std::atomic<int> inside{0};
        for (int i = 0; i < 8; ++i) {
            auto p = co_await eddy::acquire_owned(s);
            REQUIRE(p);
            hs.push_back(eddy::spawn(
                [](eddy::owned_semaphore_permit p, std::atomic<int>* inside) -> eddy::task<int> {
                    const int now = inside->fetch_add(1) + 1;
                    co_await eddy::yield_now();
                    inside->fetch_sub(1);
                    const bool ok = now <= 2 && p.num_permits() == 1;
                    // A parameter lives as long as the frame, which the join handle keeps (it
                    // holds the output): return the permit now.
                    p.release();
                    co_return ok ? 1 : 0;
                }(std::move(*p), &inside)));
        }
        int ok = 0;
        for (auto& h : hs)
            ok += co_await h;
        CHECK(ok == 8);
        auto t = eddy::try_acquire_many_owned(s, 2);
        REQUIRE(t);
        auto none = eddy::try_acquire_owned(s);
        CHECK(none.error() == eddy::errc::empty);
        std::weak_ptr<eddy::semaphore> weak = s;
        s.reset();
        CHECK_FALSE(weak.expired()); // the permit holds it
        *t = eddy::owned_semaphore_permit();
        CHECK(weak.expired());
    }());
}

TEST_CASE("semaphore blocking_acquire waits on a plain thread and refuses runtime threads",
          "[semaphore]") {
    eddy::semaphore s(0);
    std::atomic<bool> got{false};
    std::thread t([&] {
        auto p = s.blocking_acquire_many(2);
        got = p.has_value();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK_FALSE(got.load());
    s.add_permits(2);
    t.join();
    CHECK(got.load());
    CHECK(s.available_permits() == 2);

    std::atomic<bool> saw_closed{false};
    std::thread closer([&] {
        auto p = s.blocking_acquire_many(3);
        saw_closed = p.error() == eddy::errc::closed;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s.close();
    closer.join();
    CHECK(saw_closed.load());

    auto rt = current_thread_rt();
    bool threw = rt.block_on([](eddy::semaphore* s) -> eddy::task<bool> {
        try {
            (void)s->blocking_acquire();
        } catch (const std::logic_error&) {
            co_return true;
        }
        co_return false;
    }(&s));
    CHECK(threw);
}

TEST_CASE("semaphore: an always-ready acquire loop yields to other tasks", "[semaphore]") {
    eddy::semaphore s(1);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
        bool other_ran = false;
        auto other = eddy::spawn([](bool* ran) -> eddy::task<> {
            *ran = true;
            co_return;
        }(&other_ran));
        int spins = 0;
        while (!other_ran && spins < 100'000) {
            auto p = co_await s->acquire();
            ++spins;
        }
        CHECK(other_ran);
        CHECK(spins <= 1000);
        co_await other;
    }(&s));
}

TEST_CASE("semaphore: random aborts under contention never lose or duplicate permits",
          "[semaphore]") {
    constexpr std::size_t permits = 4;
    eddy::semaphore s(permits);
    auto rt = multi_thread_rt();
    rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
        for (int round = 0; round < 20; ++round) {
            std::vector<eddy::join_handle<void>> hs;
            for (int i = 0; i < 16; ++i) {
                hs.push_back(eddy::spawn([](eddy::semaphore* s, int i) -> eddy::task<> {
                    for (int k = 0; k < 20; ++k) {
                        auto p = co_await s->acquire_many(1 + (i + k) % 3);
                        co_await eddy::yield_now();
                    }
                }(s, i)));
            }
            co_await eddy::yield_now();
            for (std::size_t i = 0; i < hs.size(); i += 2)
                hs[i].abort();
            for (auto& h : hs) {
                try {
                    co_await h;
                } catch (const eddy::join_error&) {
                }
            }
            REQUIRE(s->available_permits() == 4u);
        }
    }(&s));
}

TEST_CASE("semaphore: shutting the runtime down with waiters frees them", "[semaphore]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::semaphore s(1);
        {
            auto rt = make_rt(flavor != 0);
            rt.block_on([](eddy::semaphore* s) -> eddy::task<> {
                auto held = co_await s->acquire();
                for (int i = 0; i < 10; ++i) {
                    eddy::spawn([](eddy::semaphore* s) -> eddy::task<> {
                        auto p = co_await s->acquire();
                        co_await eddy::yield_now();
                    }(s))
                        .detach();
                }
                co_await settle();
                // Grant one waiter, then leave with the runtime shutting down under it.
                held->release();
            }(&s));
        }
        CHECK(s.available_permits() == 1);
    }
}
