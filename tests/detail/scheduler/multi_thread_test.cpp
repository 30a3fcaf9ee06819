#include <eddy/coop.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/manual_event.hpp"
#include "support/threads.hpp"
#include "support/throws.hpp"

using eddy::test::manual_event;

namespace {

auto make_rt(std::uint32_t workers = 2) {
    return eddy::runtime::builder::multi_thread().worker_threads(workers).build();
}

eddy::task<> count_once(std::vector<std::atomic<int>>* runs, std::size_t i) {
    (*runs)[i].fetch_add(1, std::memory_order_relaxed);
    co_return;
}

/// Spawns `n` detached tasks that yield forever; each counts its frame's destruction in `drops`.
void spawn_spinners(const eddy::runtime::handle& handle, int n, std::atomic<int>* drops) {
    for (int i = 0; i < n; ++i) {
        handle
            .spawn([](eddy::test::atomic_drop_counter d) -> eddy::task<> {
                (void)d;
                for (;;)
                    co_await eddy::yield_now();
            }(eddy::test::atomic_drop_counter(drops)))
            .detach();
    }
}

} // namespace

TEST_CASE("multi-thread: 1,000,000 tasks from inside and from 4 foreign threads run once",
          "[multi_thread]") {
    constexpr std::size_t inside = 500'000;
    constexpr std::size_t per_thread = 125'000;
    constexpr std::size_t total = inside + 4 * per_thread;
    auto rt = make_rt();
    std::vector<std::atomic<int>> runs(total);
    auto handle = rt.get_handle();
    std::vector<std::thread> foreign;
    for (std::size_t t = 0; t < 4; ++t) {
        foreign.emplace_back([&, t] {
            for (std::size_t i = 0; i < per_thread; ++i) {
                handle.spawn(count_once(&runs, inside + t * per_thread + i)).detach();
            }
        });
    }
    rt.block_on([](std::vector<std::atomic<int>>* runs) -> eddy::task<> {
        for (std::size_t i = 0; i < inside; ++i)
            eddy::spawn(count_once(runs, i)).detach();
        co_return;
    }(&runs));
    for (auto& t : foreign)
        t.join();
    // Wait until everything ran (bounded: the workers are busy, not blocked).
    auto all_ran = [&] {
        for (auto& r : runs) {
            if (r.load() == 0)
                return false;
        }
        return true;
    };
    for (int i = 0; i < 20'000 && !all_ran(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::size_t wrong = 0;
    for (auto& r : runs)
        wrong += r.load() != 1 ? 1 : 0;
    CHECK(wrong == 0);
    auto m = rt.get_handle().metrics();
    CHECK(m.spawned_tasks >= total);
    CHECK(m.workers == 2);
}

TEST_CASE("multi-thread: a flooded worker is stolen from and both workers poll", "[multi_thread]") {
    auto rt = make_rt();
    auto steals = [&] { return rt.get_handle().metrics().total(&eddy::worker_metrics::steals); };
    // One worker spawns fewer tasks than its local queue holds (so nothing overflows to the
    // inject queue) and each task spins ~20 us: the idle worker can only get work by stealing.
    // Retry a bounded number of rounds, as a loaded machine may keep the other worker asleep.
    for (int round = 0; round < 50 && steals() == 0; ++round) {
        rt.block_on([]() -> eddy::task<> {
            std::vector<eddy::join_handle<void>> hs;
            for (int i = 0; i < 200; ++i) {
                hs.push_back(eddy::spawn([]() -> eddy::task<> {
                    const auto until =
                        std::chrono::steady_clock::now() + std::chrono::microseconds(20);
                    while (std::chrono::steady_clock::now() < until) {
                    }
                    co_return;
                }));
            }
            for (auto& h : hs)
                co_await h;
        }());
    }
    auto m = rt.get_handle().metrics();
    REQUIRE(m.per_worker.size() == 2);
    CHECK(m.total(&eddy::worker_metrics::steals) > 0);
    CHECK(m.total(&eddy::worker_metrics::steal_operations) > 0);
    CHECK(m.per_worker[0].polls > 0);
    CHECK(m.per_worker[1].polls > 0);
}

TEST_CASE("multi-thread: abort racing completion and wakes never double-runs a task",
          "[multi_thread]") {
    auto rt = make_rt();
    rt.block_on([]() -> eddy::task<> {
        for (int round = 0; round < 2'000; ++round) {
            auto ev = std::make_shared<manual_event>();
            auto polls = std::make_shared<std::atomic<int>>(0);
            auto h = eddy::spawn([ev, polls]() -> eddy::task<int> {
                polls->fetch_add(1);
                co_await ev->wait();
                polls->fetch_add(1);
                co_return 1;
            });
            std::thread setter([ev] { ev->set(); });
            if (round % 2 == 0)
                co_await eddy::yield_now();
            h.abort();
            bool cancelled = co_await eddy::test::throws_as<eddy::join_error>(h);
            setter.join();
            // Either it finished (both steps ran) or it was cancelled at its one suspension
            // point (the second step never ran); never both, never twice.
            if (cancelled) {
                REQUIRE(polls->load() <= 1);
            } else {
                REQUIRE(polls->load() == 2);
            }
        }
    }());
}

TEST_CASE("multi-thread: block_on inside a worker is a clear error", "[multi_thread]") {
    auto rt = make_rt();
    auto* rtp = &rt;
    bool threw = rt.block_on([](eddy::runtime* rt) -> eddy::task<bool> {
        try {
            rt->block_on(eddy::yield_now());
        } catch (const std::logic_error&) {
            co_return true;
        }
        co_return false;
    }(rtp));
    CHECK(threw);
}

TEST_CASE("multi-thread: shutdown while workers steal cancels everything", "[multi_thread]") {
    for (int round = 0; round < 20; ++round) {
        std::atomic<int> drops{0};
        constexpr int n = 2'000;
        {
            auto rt = make_rt();
            auto handle = rt.get_handle();
            spawn_spinners(handle, n, &drops);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        REQUIRE(drops.load() == n);
    }
}

TEST_CASE("an always-ready loop does not starve another task on one thread",
          "[multi_thread][coop]") {
    for (const auto& builder : {eddy::runtime::builder::multi_thread().worker_threads(1),
                                eddy::runtime::builder::current_thread()}) {
        auto rt = builder.build();
        bool other_ran = rt.block_on([]() -> eddy::task<bool> {
            auto flag = std::make_shared<std::atomic<bool>>(false);
            auto other = eddy::spawn([flag]() -> eddy::task<> {
                flag->store(true);
                co_return;
            });
            // Never suspends on its own: only the budget makes it yield, which must let the
            // other task run while this loop is still going.
            for (long i = 0; i < 10'000'000 && !flag->load(); ++i)
                co_await eddy::consume_budget();
            const bool ran_during_loop = flag->load();
            co_await other;
            co_return ran_during_loop;
        }());
        CHECK(other_ran);
    }
}

TEST_CASE("multi-thread: handle::current and spawning from a worker thread", "[multi_thread]") {
    auto rt = make_rt();
    std::set<std::thread::id> threads;
    std::mutex m;
    rt.block_on([](std::set<std::thread::id>* threads, std::mutex* m) -> eddy::task<> {
        auto h = eddy::runtime::handle::current();
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 1000; ++i) {
            hs.push_back(h.spawn([threads, m]() -> eddy::task<> {
                std::lock_guard lock(*m);
                threads->insert(std::this_thread::get_id());
                co_return;
            }));
        }
        for (auto& j : hs)
            co_await j;
    }(&threads, &m));
    CHECK_FALSE(threads.empty());
    CHECK(threads.count(std::this_thread::get_id()) == 0); // tasks run on workers, not here
}

TEST_CASE("multi-thread: builder options reach the worker threads", "[multi_thread]") {
    std::atomic<int> started{0};
    std::atomic<int> stopped{0};
    std::string name;
    {
        auto rt = eddy::runtime::builder::multi_thread()
                      .worker_threads(3)
                      .thread_name("eddy-test")
                      .thread_stack_size(256 * 1024)
                      .on_thread_start([&] { started.fetch_add(1); })
                      .on_thread_stop([&] { stopped.fetch_add(1); })
                      .build();
        name = rt.block_on([]() -> eddy::task<std::string> {
            char buf[32] = {};
            pthread_getname_np(pthread_self(), buf, sizeof buf);
            co_return std::string(buf);
        }());
        CHECK(rt.get_handle().metrics().workers == 3);
    }
    CHECK(started.load() >= 3);
    CHECK(stopped.load() == started.load());
    CHECK(name.rfind("eddy-test", 0) == 0);
    CHECK_THROWS_AS(eddy::runtime::builder::multi_thread().worker_threads(0),
                    std::invalid_argument);
}

TEST_CASE("multi-thread: shutdown while workers steal and blocking closures run",
          "[multi_thread]") {
    std::atomic<int> drops{0};
    std::atomic<bool> closure_finished{false};
    constexpr int n = 1'000;
    {
        auto rt = make_rt();
        auto handle = rt.get_handle();
        std::atomic<bool> closure_started{false};
        rt.block_on([](std::atomic<bool>* started, std::atomic<bool>* finished) -> eddy::task<> {
            eddy::spawn_blocking([started, finished] {
                started->store(true);
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                finished->store(true);
            }).detach();
            co_return;
        }(&closure_started, &closure_finished));
        spawn_spinners(handle, n, &drops);
        while (!closure_started.load())
            std::this_thread::yield();
    } // shutdown: cancels the spinning tasks, waits for the closure
    CHECK(drops.load() == n);
    CHECK(closure_finished.load());
}

TEST_CASE("multi-thread: metrics count spawns, polls, parks and overflow", "[multi_thread]") {
    auto rt = make_rt();
    auto handle = rt.get_handle();
    rt.block_on([]() -> eddy::task<> {
        // More spawns than a local queue holds: some spill to the inject queue.
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 1'000; ++i)
            hs.push_back(eddy::spawn([]() -> eddy::task<> { co_return; }));
        for (auto& h : hs)
            co_await h;
    }());
    CHECK(eddy::test::eventually([&] { return handle.metrics().alive_tasks == 0; }));
    auto m = handle.metrics();
    CHECK(m.workers == 2);
    CHECK(m.spawned_tasks >= 1'001); // the root too
    CHECK(m.total(&eddy::worker_metrics::polls) >= 1'001);
    CHECK(eddy::test::eventually(
        [&] { return handle.metrics().total(&eddy::worker_metrics::parks) > 0; }));
    CHECK(m.inject_queue_depth == 0);
    CHECK(m.blocking_threads == 0);
}

TEST_CASE("multi-thread: a full local queue spills to the inject queue", "[multi_thread]") {
    // One worker, so nobody steals: the 257th queued task must overflow.
    auto rt = make_rt(1);
    rt.block_on([]() -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 1'000; ++i)
            hs.push_back(eddy::spawn([]() -> eddy::task<> { co_return; }));
        for (auto& h : hs)
            co_await h;
    }());
    CHECK(rt.get_handle().metrics().total(&eddy::worker_metrics::overflows) > 0);
}

TEST_CASE("multi-thread: handle::block_on from a plain thread", "[multi_thread]") {
    auto rt = make_rt();
    auto handle = rt.get_handle();
    int v = 0;
    std::thread t([&] { v = handle.block_on([]() -> eddy::task<int> { co_return 5; }()); });
    t.join();
    CHECK(v == 5);
}

TEST_CASE("multi-thread: a task queued behind a worker stuck in a long poll runs on a busy one",
          "[multi_thread]") {
    // One worker spins in a poll until a task it spawned has run; the other is kept busy by a
    // task that yields in a loop, so it never goes looking for work the idle way. The spawned
    // task sits in the stuck worker's queue: only the busy worker's check for stranded work
    // can run it (without it, the wait below gives up after its limit).
    auto rt = make_rt(2);
    std::atomic<bool> stop{false};
    std::atomic<bool> spinner_started{false};
    std::atomic<bool> stranded_ran{false};
    std::atomic<bool> waited_out{false};
    rt.block_on([](std::atomic<bool>* stop, std::atomic<bool>* started, std::atomic<bool>* ran,
                   std::atomic<bool>* gave_up) -> eddy::task<> {
        // Two, so that this worker wakes the other to steal one (a single queued task is left
        // for this worker to run next).
        auto spin = [](std::atomic<bool>* stop, std::atomic<bool>* started) -> eddy::task<> {
            started->store(true);
            while (!stop->load())
                co_await eddy::yield_now();
        };
        auto spinner1 = eddy::spawn(spin(stop, started));
        auto spinner2 = eddy::spawn(spin(stop, started));
        const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        // This worker does not yield, so a spinner that started did so on the other one.
        while (!started->load() && std::chrono::steady_clock::now() < limit)
            std::this_thread::yield();
        auto stranded = eddy::spawn([](std::atomic<bool>* ran) -> eddy::task<> {
            ran->store(true);
            co_return;
        }(ran));
        while (!ran->load() && std::chrono::steady_clock::now() < limit)
            std::this_thread::yield();
        gave_up->store(!ran->load());
        stop->store(true);
        co_await stranded;
        co_await spinner1;
        co_await spinner2;
    }(&stop, &spinner_started, &stranded_ran, &waited_out));
    CHECK(spinner_started.load());
    CHECK(stranded_ran.load());
    CHECK_FALSE(waited_out.load());
}
