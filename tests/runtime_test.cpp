#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/manual_event.hpp"

using eddy::test::manual_event;

namespace {
auto make_rt() {
    return eddy::runtime::builder::current_thread().build();
}
} // namespace

TEST_CASE("run drives a task to completion and returns its value", "[runtime]") {
    CHECK(eddy::run([]() -> eddy::task<int> { co_return 7; }()) == 7);
    eddy::run(eddy::yield_now());
}

TEST_CASE("spawn from 4 foreign threads while the runtime runs", "[runtime]") {
    constexpr int threads = 4;
    constexpr int per_thread = 2'500;
    auto rt = make_rt();
    std::atomic<int> runs{0};
    auto handle = rt.get_handle();
    rt.block_on([](eddy::runtime::handle handle, std::atomic<int>* runs) -> eddy::task<> {
        std::vector<std::thread> spawners;
        for (int t = 0; t < threads; ++t) {
            spawners.emplace_back([handle, runs] {
                for (int i = 0; i < per_thread; ++i) {
                    handle
                        .spawn([runs]() -> eddy::task<> {
                            runs->fetch_add(1, std::memory_order_relaxed);
                            co_return;
                        })
                        .detach();
                }
            });
        }
        while (runs->load() < threads * per_thread)
            co_await eddy::yield_now();
        for (auto& s : spawners)
            s.join();
    }(handle, &runs));
    CHECK(runs.load() == threads * per_thread);
}

TEST_CASE("a task woken from a foreign thread resumes on the runtime", "[runtime]") {
    auto rt = make_rt();
    manual_event ev;
    std::thread::id runtime_thread = std::this_thread::get_id();
    std::thread::id resumed_on;
    std::thread setter;
    rt.block_on(
        [](manual_event& ev, std::thread& setter, std::thread::id* resumed_on) -> eddy::task<> {
            setter = std::thread([&ev] { ev.set(); });
            co_await ev.wait();
            *resumed_on = std::this_thread::get_id();
        }(ev, setter, &resumed_on));
    setter.join();
    CHECK(resumed_on == runtime_thread);
}

TEST_CASE("a wake that arrives while the task is still running re-runs it exactly once",
          "[runtime]") {
    // The waker fires from another thread before await_suspend returns, i.e. while the task is
    // RUNNING: the wake may only set NOTIFIED, and the poller must re-queue the task once.
    // Both flavors.
    struct wake_while_running {
        std::thread* waker_thread;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
            auto w = std::make_shared<eddy::waker>(eddy::current_waker(h));
            std::atomic<bool> woken{false};
            *waker_thread = std::thread([w, &woken] {
                w->wake();
                woken.store(true);
            });
            while (!woken.load())
                std::this_thread::yield(); // still inside the poll
        }
        void await_resume() const noexcept {}
    };
    constexpr int rounds = 100;
    for (const auto& builder : {eddy::runtime::builder::current_thread(),
                                eddy::runtime::builder::multi_thread().worker_threads(2)}) {
        auto rt = builder.build();
        int resumes = 0;
        rt.block_on([](int* resumes) -> eddy::task<> {
            for (int r = 0; r < rounds; ++r) {
                std::thread t;
                co_await wake_while_running{&t};
                ++*resumes;
                t.join();
            }
        }(&resumes));
        CHECK(resumes == rounds);
    }
}

TEST_CASE("an event set from 4 threads at once resumes its waiter exactly once", "[runtime]") {
    auto rt = make_rt();
    for (int round = 0; round < 50; ++round) {
        manual_event ev;
        int resumed = 0;
        std::vector<std::thread> setters;
        rt.block_on(
            [](manual_event& ev, int* resumed, std::vector<std::thread>& setters) -> eddy::task<> {
                auto waiter = eddy::spawn([](manual_event& ev, int* resumed) -> eddy::task<> {
                    co_await ev.wait();
                    ++*resumed;
                }(ev, resumed));
                co_await eddy::yield_now();
                for (int i = 0; i < 4; ++i)
                    setters.emplace_back([&ev] { ev.set(); });
                co_await waiter;
            }(ev, &resumed, setters));
        for (auto& t : setters)
            t.join();
        REQUIRE(resumed == 1);
    }
}

TEST_CASE("runtime destroyed with 10,000 pending tasks cancels them all", "[runtime]") {
    constexpr int n = 10'000;
    int drops = 0;
    std::atomic<int> ran_after{0};
    std::vector<eddy::join_handle<void>> handles;
    manual_event never;
    {
        auto rt = make_rt();
        rt.block_on([](manual_event& never, int* drops, std::atomic<int>* ran_after,
                       std::vector<eddy::join_handle<void>>& handles) -> eddy::task<> {
            for (int i = 0; i < n / 2; ++i) {
                handles.push_back(eddy::spawn([](manual_event& ev, eddy::test::drop_counter d,
                                                 std::atomic<int>* ran_after) -> eddy::task<> {
                    (void)d;
                    co_await ev.wait();
                    ran_after->fetch_add(1);
                }(never, eddy::test::drop_counter(drops), ran_after)));
            }
            co_await eddy::yield_now(); // every waiter runs once and suspends
            CHECK(never.waiting() == n / 2);
            for (int i = 0; i < n / 2; ++i) {
                // Queued behind us and never polled: block_on returns first.
                eddy::spawn(
                    [](eddy::test::drop_counter d, std::atomic<int>* ran_after) -> eddy::task<> {
                        (void)d;
                        ran_after->fetch_add(1);
                        co_return;
                    }(eddy::test::drop_counter(drops), ran_after))
                    .detach();
            }
        }(never, &drops, &ran_after, handles));
        // block_on returned with the second half still queued.
    }
    CHECK(drops == n);
    CHECK(never.waiting() == 0);
    never.set();
    CHECK(ran_after.load() == 0);
    for (auto& h : handles) {
        CHECK(h.is_finished());
    }
    // Joining after the runtime is gone reports cancellation.
    CHECK_THROWS_AS(eddy::detail::join_access<void>::take(handles.front()), eddy::join_error);
}

TEST_CASE("spawning through a handle after shutdown cancels at once", "[runtime]") {
    auto rt = std::make_unique<eddy::runtime>(make_rt());
    auto handle = rt->get_handle();
    rt.reset();
    int drops = 0;
    auto h = handle.spawn([](eddy::test::drop_counter d) -> eddy::task<int> {
        (void)d;
        co_return 1;
    }(eddy::test::drop_counter(&drops)));
    CHECK(drops == 1);
    CHECK(h.is_finished());
    CHECK_THROWS_AS(eddy::detail::join_access<int>::take(h), eddy::join_error);
}

TEST_CASE("block_on from inside the runtime is a clear error, not a deadlock", "[runtime]") {
    auto rt = make_rt();
    rt.block_on([](eddy::runtime* rt) -> eddy::task<> {
        CHECK_THROWS_AS(rt->block_on(eddy::yield_now()), std::logic_error);
        co_return;
    }(&rt));
}

TEST_CASE("block_on on a current-thread runtime from two threads at once is refused", "[runtime]") {
    auto rt = make_rt();
    manual_event release;
    std::atomic<bool> first_running{false};
    std::thread first([&] {
        rt.block_on([](manual_event& release, std::atomic<bool>* running) -> eddy::task<> {
            running->store(true);
            co_await release.wait();
        }(release, &first_running));
    });
    while (!first_running.load())
        std::this_thread::yield();
    CHECK_THROWS_AS(rt.block_on(eddy::yield_now()), std::logic_error);
    release.set();
    first.join();
    // The runtime is usable again afterwards.
    CHECK(rt.block_on([]() -> eddy::task<int> { co_return 3; }()) == 3);
}

TEST_CASE("handle::current finds the running runtime", "[runtime]") {
    CHECK_THROWS_AS(eddy::runtime::handle::current(), std::logic_error);
    auto rt = make_rt();
    int v = rt.block_on([]() -> eddy::task<int> {
        auto h = eddy::runtime::handle::current();
        co_return co_await h.spawn([]() -> eddy::task<int> { co_return 11; });
    }());
    CHECK(v == 11);
}

TEST_CASE("builder rejects zero intervals", "[runtime]") {
    auto b = eddy::runtime::builder::current_thread();
    CHECK_THROWS_AS(b.global_queue_interval(0), std::invalid_argument);
    CHECK_THROWS_AS(b.event_interval(0), std::invalid_argument);
}

TEST_CASE("wakes from another thread racing runtime shutdown are safe", "[runtime]") {
    // The setter wakes every waiter (wake by value: the queue entry may become the task's last
    // reference) while the main thread destroys the runtime. ASan checks nothing is touched after
    // it is freed.
    for (const auto& builder : {eddy::runtime::builder::current_thread(),
                                eddy::runtime::builder::multi_thread().worker_threads(2)}) {
        for (int round = 0; round < 30; ++round) {
            manual_event ev;
            std::thread setter;
            {
                auto rt = builder.build();
                auto handle = rt.get_handle();
                for (int i = 0; i < 50; ++i) {
                    handle.spawn([](manual_event& ev) -> eddy::task<> { co_await ev.wait(); }(ev))
                        .detach();
                }
                rt.block_on(eddy::yield_now());
                setter = std::thread([&ev] { ev.set(); });
            }
            setter.join();
        }
    }
}

TEST_CASE("a current-thread runtime shut down while a blocking closure runs block_on on it",
          "[runtime]") {
    std::atomic<bool> inside{false};
    std::atomic<bool> cancelled{false};
    {
        auto rt = make_rt();
        auto handle = rt.get_handle();
        rt.block_on([](eddy::runtime::handle handle, std::atomic<bool>* inside,
                       std::atomic<bool>* cancelled) -> eddy::task<> {
            eddy::spawn_blocking([handle, inside, cancelled] {
                for (;;) {
                    try {
                        handle.block_on([](std::atomic<bool>* inside) -> eddy::task<> {
                            inside->store(true);
                            for (;;)
                                co_await eddy::yield_now();
                        }(inside));
                        return;
                    } catch (const eddy::join_error& e) {
                        cancelled->store(e.is_cancelled());
                        return;
                    } catch (const std::logic_error&) {
                        // The outer block_on has not left yet: a current-thread runtime runs one
                        // block_on at a time. Try again.
                        std::this_thread::yield();
                    }
                }
            }).detach();
            co_return;
        }(handle, &inside, &cancelled));
        while (!inside.load())
            std::this_thread::yield();
    } // stops the other thread's block_on, cancels its root, waits for the closure
    CHECK(cancelled.load());
}
