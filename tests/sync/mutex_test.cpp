#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/mutex.hpp>
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

using eddy::test::current_thread_rt;
using eddy::test::make_rt;
using eddy::test::multi_thread_rt;
using eddy::test::settle;

namespace {

/// Locks `m` and stores `v` in it.
eddy::task<> lock_and_set(eddy::mutex<int>* m, int v) {
    auto g = co_await m->lock();
    *g = v;
}

/// Locks `m` and adds `d` to its value.
eddy::task<> lock_and_add(eddy::mutex<int>* m, int d) {
    auto g = co_await m->lock();
    *g += d;
}

} // namespace

TEST_CASE("mutex guards its value and unlocks on destruction", "[mutex]") {
    eddy::mutex<std::string> m("a");
    auto rt = current_thread_rt();
    rt.block_on([](eddy::mutex<std::string>* m) -> eddy::task<> {
        {
            auto g = co_await m->lock();
            CHECK(g.owns_lock());
            g->append("b");
            *g += "c";
            CHECK_FALSE(m->try_lock());
        }
        auto g = m->try_lock();
        REQUIRE(g);
        CHECK(**g == "abc");
        g->unlock();
        CHECK_FALSE(g->owns_lock());
        CHECK(m->try_lock());
    }(&m));
    CHECK(m.get_mut() == "abc");
    CHECK(std::move(m).into_inner() == "abc");
}

TEST_CASE("mutex hands the lock to waiters in FIFO order", "[mutex]") {
    eddy::mutex<std::vector<int>> m;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::mutex<std::vector<int>>* m) -> eddy::task<> {
        auto held = co_await m->lock();
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 40; ++i) {
            hs.push_back(eddy::spawn([](eddy::mutex<std::vector<int>>* m, int i) -> eddy::task<> {
                auto g = co_await m->lock();
                g->push_back(i);
                co_await eddy::yield_now(); // hold it across a suspension
            }(m, i)));
            co_await eddy::yield_now(); // each queues before the next is spawned
        }
        held.unlock();
        for (auto& h : hs)
            co_await h;
        auto g = co_await m->lock();
        REQUIRE(g->size() == 40);
        for (int i = 0; i < 40; ++i)
            CHECK((*g)[static_cast<std::size_t>(i)] == i);
    }(&m));
}

TEST_CASE("mutex: many tasks incrementing under the lock lose no update", "[mutex]") {
    constexpr int tasks = 16;
    constexpr int iterations = 1000;
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::mutex<long> m(0);
        auto rt = make_rt(flavor);
        rt.block_on([](eddy::mutex<long>* m) -> eddy::task<> {
            std::vector<eddy::join_handle<void>> hs;
            for (int t = 0; t < tasks; ++t) {
                hs.push_back(eddy::spawn([](eddy::mutex<long>* m, int t) -> eddy::task<> {
                    for (int i = 0; i < iterations; ++i) {
                        auto g = co_await m->lock();
                        const long before = *g;
                        if ((i + t) % 16 == 0)
                            co_await eddy::yield_now(); // contend while holding it
                        *g = before + 1;
                    }
                }(m, t)));
            }
            for (auto& h : hs)
                co_await h;
        }(&m));
        CHECK(m.get_mut() == long{tasks} * iterations);
    }
}

TEST_CASE("mutex: a cancelled waiter neither holds the lock nor blocks the queue", "[mutex]") {
    eddy::mutex<int> m(0);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::mutex<int>* m) -> eddy::task<> {
        auto held = co_await m->lock();
        auto cancelled = eddy::spawn(lock_and_set(m, -1));
        co_await settle();
        auto next = eddy::spawn(lock_and_add(m, 10));
        co_await settle();
        bool threw = co_await eddy::test::abort_and_join(cancelled);
        CHECK(threw);
        held.unlock();
        co_await next;
        auto g = m->try_lock();
        REQUIRE(g);
        CHECK(**g == 10);
    }(&m));
}

TEST_CASE("mutex: a waiter cancelled after the lock was handed to it passes it on", "[mutex]") {
    eddy::mutex<int> m(0);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::mutex<int>* m) -> eddy::task<> {
        auto held = co_await m->lock();
        auto first = eddy::spawn(lock_and_set(m, -1));
        co_await settle();
        auto second = eddy::spawn(lock_and_add(m, 10));
        co_await settle();
        held.unlock(); // hands the lock to `first`, which is woken but has not run
        CHECK_FALSE(m->try_lock());
        // Its frame is destroyed before it resumes.
        bool threw = co_await eddy::test::abort_and_join(first);
        CHECK(threw);
        co_await second;
        auto g = m->try_lock();
        REQUIRE(g);
        CHECK(**g == 10);
    }(&m));
}

TEST_CASE("mutex: a waiter cancelled after the hand-off with no one behind it unlocks", "[mutex]") {
    eddy::mutex<int> m(0);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::mutex<int>* m) -> eddy::task<> {
        auto held = co_await m->lock();
        auto first = eddy::spawn(lock_and_set(m, -1));
        co_await settle();
        held.unlock();
        bool threw = co_await eddy::test::abort_and_join(first);
        CHECK(threw);
        auto g = m->try_lock();
        REQUIRE(g);
        CHECK(**g == 0);
    }(&m));
}

TEST_CASE("mutex: aborts racing with hand-offs on two workers never leave it locked", "[mutex]") {
    eddy::mutex<long> m(0);
    auto rt = multi_thread_rt();
    rt.block_on([](eddy::mutex<long>* m) -> eddy::task<> {
        for (int round = 0; round < 30; ++round) {
            std::vector<eddy::join_handle<void>> hs;
            for (int i = 0; i < 12; ++i) {
                hs.push_back(eddy::spawn([](eddy::mutex<long>* m) -> eddy::task<> {
                    for (int k = 0; k < 50; ++k) {
                        auto g = co_await m->lock();
                        ++*g;
                        if (k % 5 == 0)
                            co_await eddy::yield_now();
                    }
                }(m)));
            }
            co_await eddy::yield_now();
            for (std::size_t i = 1; i < hs.size(); i += 3)
                hs[i].abort();
            for (auto& h : hs) {
                try {
                    co_await h;
                } catch (const eddy::join_error&) {
                }
            }
            auto g = m->try_lock();
            REQUIRE(g);
        }
    }(&m));
}

TEST_CASE("mutex blocking_lock works from plain threads alongside tasks", "[mutex]") {
    constexpr int per_side = 2000;
    eddy::mutex<long> m(0);
    auto rt = multi_thread_rt();
    std::thread plain([&m] {
        for (int i = 0; i < per_side; ++i) {
            auto g = m.blocking_lock();
            ++*g;
        }
    });
    rt.block_on([](eddy::mutex<long>* m) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (int t = 0; t < 4; ++t) {
            hs.push_back(eddy::spawn([](eddy::mutex<long>* m) -> eddy::task<> {
                for (int i = 0; i < per_side / 4; ++i) {
                    auto g = co_await m->lock();
                    ++*g;
                    if (i % 8 == 0)
                        co_await eddy::yield_now();
                }
            }(m)));
        }
        for (auto& h : hs)
            co_await h;
    }(&m));
    plain.join();
    CHECK(m.get_mut() == 2 * per_side);

    // A thread that runs a runtime's tasks must not block on it.
    bool threw = rt.block_on([](eddy::mutex<long>* m) -> eddy::task<bool> {
        try {
            (void)m->blocking_lock();
        } catch (const std::logic_error& e) {
            co_return std::string(e.what()).find("blocking_lock") != std::string::npos;
        }
        co_return false;
    }(&m));
    CHECK(threw);
}

TEST_CASE("mutex owned guards move into spawned tasks", "[mutex]") {
    auto rt = multi_thread_rt();
    rt.block_on([]() -> eddy::task<> {
        auto m = std::make_shared<eddy::mutex<int>>(0);
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 10; ++i) {
            auto g = co_await eddy::lock_owned(m);
            hs.push_back(eddy::spawn([](eddy::owned_mutex_guard<int> g) -> eddy::task<> {
                co_await eddy::yield_now();
                ++*g;
                g.unlock();
            }(std::move(g))));
        }
        for (auto& h : hs)
            co_await h;
        auto g = eddy::try_lock_owned(m);
        REQUIRE(g);
        CHECK(**g == 10);
        CHECK_FALSE(eddy::try_lock_owned(m));
        CHECK((*g).mutex_ptr() == m);
    }());
}

TEST_CASE("mutex: shutting the runtime down with waiters frees them", "[mutex]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::mutex<int> m(0);
        {
            auto rt = make_rt(flavor);
            rt.block_on([](eddy::mutex<int>* m) -> eddy::task<> {
                auto held = co_await m->lock();
                for (int i = 0; i < 10; ++i) {
                    eddy::spawn([](eddy::mutex<int>* m) -> eddy::task<> {
                        auto g = co_await m->lock();
                        ++*g;
                        co_await eddy::yield_now();
                    }(m))
                        .detach();
                }
                co_await settle();
                held.unlock(); // hand-off in flight as the runtime shuts down
            }(&m));
        }
        CHECK(m.try_lock());
    }
}
