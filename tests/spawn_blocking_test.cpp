#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/yield_now.hpp>

#include <eddy/detail/blocking/pool.hpp>
#include <eddy/detail/context.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <latch>
#include <memory>
#include <mutex>
#include <semaphore>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>

#include "support/manual_event.hpp"
#include "support/throws.hpp"

using namespace std::chrono_literals;
using eddy::test::drop_counter;

#include "support/threads.hpp"

using eddy::test::baseline_thread_count;
using eddy::test::eventually;
using eddy::test::os_thread_count;

namespace {

auto make_rt() {
    return eddy::runtime::builder::current_thread().build();
}

/// The pool of the runtime this thread runs (only inside a runtime task or blocking closure).
eddy::detail::blocking_pool& current_pool() {
    eddy::detail::blocking_pool* pool = eddy::detail::context().blocking;
    REQUIRE(pool != nullptr);
    return *pool;
}

/// Joins `h` and reports whether it failed with `errc::cancelled`.
template <class T>
eddy::task<bool> join_cancelled(eddy::join_handle<T>& h) {
    try {
        co_await h;
    } catch (const eddy::join_error& e) {
        co_return e.is_cancelled();
    }
    co_return false;
}

} // namespace

TEST_CASE("spawn_blocking returns the closure's value through the join handle",
          "[spawn_blocking]") {
    auto rt = make_rt();
    int v = rt.block_on([]() -> eddy::task<int> {
        auto h = eddy::spawn_blocking([] { return 41; });
        auto s =
            eddy::spawn_blocking([p = std::make_unique<int>(1)] { return std::to_string(*p); });
        int ran = 0;
        auto u = eddy::spawn_blocking([&ran] { ++ran; });
        co_await u;
        CHECK(ran == 1);
        std::string one = co_await s;
        co_return co_await h + std::stoi(one);
    }());
    CHECK(v == 42);
}

TEST_CASE("spawn_blocking rethrows the closure's exception in the joiner", "[spawn_blocking]") {
    auto rt = make_rt();
    bool threw = rt.block_on([]() -> eddy::task<bool> {
        auto h =
            eddy::spawn_blocking([]() -> int { throw std::invalid_argument("blocking boom"); });
        co_return co_await eddy::test::throws_as<std::invalid_argument>(h);
    }());
    CHECK(threw);
    std::string what = rt.block_on([]() -> eddy::task<std::string> {
        auto h = eddy::spawn_blocking([] { throw std::runtime_error("void boom"); });
        try {
            co_await h;
        } catch (const std::runtime_error& e) {
            co_return e.what();
        }
        co_return "nothing thrown";
    }());
    CHECK(what == "void boom");
}

TEST_CASE("a detached blocking closure's exception goes to the runtime hook", "[spawn_blocking]") {
    std::atomic<int> hook_calls{0};
    std::mutex mutex;
    std::string what;
    auto rt = eddy::runtime::builder::current_thread()
                  .unhandled_exception([&](eddy::task_id, std::exception_ptr e) {
                      std::lock_guard lock(mutex);
                      what = eddy::unhandled_exception_hooks::describe(e);
                      hook_calls.fetch_add(1);
                  })
                  .build();
    std::latch detached{1};
    rt.block_on([](std::latch* detached) -> eddy::task<> {
        // The closure throws only after the handle is gone: an exception stored while a handle
        // exists is the handle's, and is discarded with it.
        eddy::spawn_blocking([detached] {
            detached->wait();
            throw std::runtime_error("nobody joins");
        }).detach();
        detached->count_down();
        co_return;
    }(&detached));
    CHECK(eventually([&] { return hook_calls.load() == 1; }));
    std::lock_guard lock(mutex);
    CHECK_THAT(what, Catch::Contains("nobody joins"));
}

TEST_CASE("the closure runs on a pool thread, not the runtime thread", "[spawn_blocking]") {
    auto rt = make_rt();
    auto [runtime_thread, closure_thread] =
        rt.block_on([]() -> eddy::task<std::pair<std::thread::id, std::thread::id>> {
            auto h = eddy::spawn_blocking([] { return std::this_thread::get_id(); });
            std::thread::id closure = co_await h;
            co_return std::pair{std::this_thread::get_id(), closure};
        }());
    CHECK(runtime_thread == std::this_thread::get_id());
    CHECK(closure_thread != runtime_thread);
}

TEST_CASE("a blocked closure does not stall the runtime's other tasks", "[spawn_blocking]") {
    auto rt = make_rt();
    std::binary_semaphore go{0};
    auto [released, yields] =
        rt.block_on([](std::binary_semaphore* go) -> eddy::task<std::pair<bool, int>> {
            // The closure blocks until an async task releases it: if it ran on the runtime thread,
            // that task could never run and the closure would time out.
            auto h = eddy::spawn_blocking([go] { return go->try_acquire_for(2s); });
            auto other = eddy::spawn([](std::binary_semaphore* go) -> eddy::task<int> {
                int yields = 0;
                for (; yields < 10; ++yields)
                    co_await eddy::yield_now();
                go->release();
                co_return yields;
            }(go));
            int y = co_await other;
            bool r = co_await h;
            co_return std::pair{r, y};
        }(&go));
    CHECK(released);
    CHECK(yields == 10);

    // Same with a closure that sleeps: the runtime keeps polling tasks meanwhile.
    int polls = rt.block_on([]() -> eddy::task<int> {
        std::atomic<bool> done{false};
        auto h = eddy::spawn_blocking([&done] {
            std::this_thread::sleep_for(20ms);
            done.store(true);
        });
        int polls = 0;
        while (!done.load()) {
            ++polls;
            co_await eddy::yield_now();
        }
        co_await h;
        co_return polls;
    }());
    CHECK(polls > 0);
}

TEST_CASE("64 blocking closures with max_blocking_threads(4) use at most 4 threads",
          "[spawn_blocking]") {
    auto rt = eddy::runtime::builder::current_thread().max_blocking_threads(4).build();
    struct shared_state {
        std::atomic<int> running{0};
        std::atomic<int> max_running{0};
        std::atomic<std::size_t> max_threads{0};
        std::mutex mutex;
        std::set<std::thread::id> threads;
    } st;
    int sum = rt.block_on([](shared_state* st) -> eddy::task<int> {
        eddy::detail::blocking_pool& pool = current_pool();
        std::vector<eddy::join_handle<int>> handles;
        for (int i = 0; i < 64; ++i) {
            handles.push_back(eddy::spawn_blocking([st, &pool, i] {
                const int now = st->running.fetch_add(1) + 1;
                int seen = st->max_running.load();
                while (now > seen && !st->max_running.compare_exchange_weak(seen, now)) {
                }
                std::size_t threads = pool.thread_count();
                std::size_t seen_threads = st->max_threads.load();
                while (threads > seen_threads &&
                       !st->max_threads.compare_exchange_weak(seen_threads, threads)) {
                }
                {
                    std::lock_guard lock(st->mutex);
                    st->threads.insert(std::this_thread::get_id());
                }
                std::this_thread::sleep_for(1ms);
                st->running.fetch_sub(1);
                return i;
            }));
        }
        CHECK(pool.thread_count() <= 4);
        int sum = 0;
        for (auto& h : handles)
            sum += co_await h;
        co_return sum;
    }(&st));
    CHECK(sum == 63 * 64 / 2);
    CHECK(st.max_running.load() <= 4);
    CHECK(st.max_running.load() >= 2); // they did run concurrently
    CHECK(st.max_threads.load() <= 4);
    CHECK(st.threads.size() <= 4);
}

TEST_CASE("abort before the closure starts cancels it and it never runs", "[spawn_blocking]") {
    auto rt = eddy::runtime::builder::current_thread().max_blocking_threads(2).build();
    std::latch started{2};
    std::latch release{1};
    std::atomic<bool> ran{false};
    int drops = 0;
    auto [cancelled, fillers] = rt.block_on([](std::latch* started, std::latch* release,
                                               std::atomic<bool>* ran,
                                               int* drops) -> eddy::task<std::pair<bool, int>> {
        // Occupy both pool threads so the target stays queued.
        std::vector<eddy::join_handle<int>> fill;
        for (int i = 0; i < 2; ++i) {
            fill.push_back(eddy::spawn_blocking([started, release] {
                started->count_down();
                release->wait();
                return 1;
            }));
        }
        started->wait(); // blocks the runtime thread only; the closures run elsewhere
        auto target = eddy::spawn_blocking([ran, d = drop_counter(drops)] { ran->store(true); });
        CHECK(current_pool().queue_depth() == 1);
        target.abort();
        release->count_down();
        bool cancelled = co_await join_cancelled(target);
        int n = 0;
        for (auto& h : fill)
            n += co_await h;
        co_return std::pair{cancelled, n};
    }(&started, &release, &ran, &drops));
    CHECK(cancelled);
    CHECK(fillers == 2);
    CHECK_FALSE(ran.load());
    CHECK(drops == 1); // the closure was destroyed without running
}

TEST_CASE("abort while the closure runs lets it finish and returns its value", "[spawn_blocking]") {
    auto rt = make_rt();
    std::latch started{1};
    std::latch go{1};
    int v = rt.block_on([](std::latch* started, std::latch* go) -> eddy::task<int> {
        auto h = eddy::spawn_blocking([started, go] {
            started->count_down();
            go->wait();
            return 7;
        });
        started->wait();
        h.abort();
        h.abort(); // idempotent
        go->count_down();
        co_return co_await h;
    }(&started, &go));
    CHECK(v == 7);
}

TEST_CASE("idle blocking threads exit after the keep-alive", "[spawn_blocking]") {
    auto rt = eddy::runtime::builder::current_thread().thread_keep_alive(30ms).build();
    std::latch all_started{3};
    eddy::detail::blocking_pool* pool =
        rt.block_on([](std::latch* all_started) -> eddy::task<eddy::detail::blocking_pool*> {
            std::vector<eddy::join_handle<void>> hs;
            for (int i = 0; i < 3; ++i) {
                // Each waits for the other two, so three threads must exist.
                hs.push_back(
                    eddy::spawn_blocking([all_started] { all_started->arrive_and_wait(); }));
            }
            for (auto& h : hs)
                co_await h;
            co_return &current_pool();
        }(&all_started));
    CHECK(pool->thread_count() <= 3);
    CHECK(eventually([&] { return pool->thread_count() == 0; }));
    CHECK(pool->idle_thread_count() == 0);

    // The pool starts threads again on demand.
    int v = rt.block_on(
        []() -> eddy::task<int> { co_return co_await eddy::spawn_blocking([] { return 5; }); }());
    CHECK(v == 5);
    CHECK(eventually([&] { return pool->thread_count() == 0; }));
}

TEST_CASE("destroying the runtime waits for a running closure and joins every thread",
          "[spawn_blocking]") {
    const std::size_t threads_before = baseline_thread_count();
    std::atomic<int> starts{0};
    std::atomic<int> stops{0};
    std::atomic<bool> done{false};
    std::latch started{1};
    {
        auto rt = eddy::runtime::builder::current_thread()
                      .on_thread_start([&] { starts.fetch_add(1); })
                      .on_thread_stop([&] { stops.fetch_add(1); })
                      .build();
        rt.block_on([](std::latch* started, std::atomic<bool>* done) -> eddy::task<> {
            eddy::spawn_blocking([started, done] {
                started->count_down();
                std::this_thread::sleep_for(50ms);
                done->store(true);
            }).detach();
            started->wait();
            co_return;
        }(&started, &done));
        CHECK_FALSE(done.load());
    }
    CHECK(done.load());
    CHECK(starts.load() == 1);
    CHECK(stops.load() == 1);
    // A joined thread can linger in /proc for a moment after pthread_join returns.
    CHECK(eventually([&] { return os_thread_count() == threads_before; }));
}

TEST_CASE("queued closures are cancelled at shutdown, running ones finish", "[spawn_blocking]") {
    std::latch started{1};
    std::latch release{1};
    std::atomic<int> ran{0};
    eddy::join_handle<int> filler;
    std::vector<eddy::join_handle<int>> queued;
    {
        auto rt = eddy::runtime::builder::current_thread().max_blocking_threads(1).build();
        rt.block_on([](std::latch* started, std::latch* release, std::atomic<int>* ran,
                       eddy::join_handle<int>* filler,
                       std::vector<eddy::join_handle<int>>* queued) -> eddy::task<> {
            *filler = eddy::spawn_blocking([started, release] {
                started->count_down();
                release->wait();
                return 1;
            });
            started->wait();
            for (int i = 0; i < 3; ++i)
                queued->push_back(eddy::spawn_blocking([ran] { return ran->fetch_add(1); }));
            CHECK(current_pool().queue_depth() == 3);
            co_return;
        }(&started, &release, &ran, &filler, &queued));

        // Shutdown cancels the queued closures before it waits for the running one; release the
        // running one once that has happened.
        std::thread releaser([&] {
            eventually([&] {
                return std::all_of(queued.begin(), queued.end(),
                                   [](const auto& h) { return h.is_finished(); });
            });
            release.count_down();
        });
        rt.shutdown();
        releaser.join();
        CHECK(filler.is_finished());
    }
    CHECK(ran.load() == 0);
    auto rt2 = make_rt();
    auto [filler_value, cancelled] = rt2.block_on(
        [](eddy::join_handle<int>* filler,
           std::vector<eddy::join_handle<int>>* queued) -> eddy::task<std::pair<int, int>> {
            int cancelled = 0;
            for (auto& h : *queued)
                cancelled += co_await join_cancelled(h) ? 1 : 0;
            co_return std::pair{co_await *filler, cancelled};
        }(&filler, &queued));
    CHECK(filler_value == 1);
    CHECK(cancelled == 3);
}

TEST_CASE("spawn_blocking outside a runtime is a clear error", "[spawn_blocking]") {
    CHECK_THROWS_AS(eddy::spawn_blocking([] { return 1; }), std::logic_error);
    CHECK_THROWS_WITH(eddy::spawn_blocking([] {}),
                      Catch::Contains("eddy::spawn_blocking must be called"));
    bool threw = false;
    std::thread([&threw] {
        try {
            (void)eddy::spawn_blocking([] {});
        } catch (const std::logic_error&) {
            threw = true;
        }
    }).join();
    CHECK(threw);
}

TEST_CASE("spawn_blocking nests inside a blocking closure", "[spawn_blocking]") {
    auto rt = make_rt();
    auto [inner_value, after_block_on] = rt.block_on([]() -> eddy::task<std::pair<int, int>> {
        // The outer closure spawns an inner one and hands its join handle back.
        auto outer = eddy::spawn_blocking([] { return eddy::spawn_blocking([] { return 20; }); });
        eddy::join_handle<int> inner = co_await outer;
        int v = co_await inner;

        // A nested runtime inside a blocking closure leaves the pool reachable afterwards.
        auto nested = eddy::spawn_blocking([] {
            int x =
                eddy::runtime::builder::current_thread().build().block_on([]() -> eddy::task<int> {
                    co_return co_await eddy::spawn_blocking([] { return 1; });
                }());
            return std::pair{x, eddy::spawn_blocking([] { return 21; })};
        });
        auto [x, again] = co_await nested;
        co_return std::pair{v, x + co_await again};
    }());
    CHECK(inner_value == 20);
    CHECK(after_block_on == 22);
}

TEST_CASE("blocking threads get the builder's name, stack size and hooks", "[spawn_blocking]") {
    std::atomic<int> starts{0};
    std::atomic<int> stops{0};
    std::string name;
    std::size_t stack = 0;
    {
        auto rt = eddy::runtime::builder::current_thread()
                      .thread_name("bp-a-name-longer-than-fifteen")
                      .thread_stack_size(std::size_t{4} << 20)
                      .on_thread_start([&] { starts.fetch_add(1); })
                      .on_thread_stop([&] { stops.fetch_add(1); })
                      .build();
        auto [n, s] = rt.block_on([]() -> eddy::task<std::pair<std::string, std::size_t>> {
            co_return co_await eddy::spawn_blocking([] {
                char buf[32] = {};
                pthread_getname_np(pthread_self(), buf, sizeof(buf));
                pthread_attr_t attr;
                std::size_t size = 0;
                if (pthread_getattr_np(pthread_self(), &attr) == 0) {
                    pthread_attr_getstacksize(&attr, &size);
                    pthread_attr_destroy(&attr);
                }
                return std::pair{std::string(buf), size};
            });
        }());
        name = n;
        stack = s;
        CHECK(starts.load() == 1);
    }
    CHECK(name == "bp-a-name-longe");
    CHECK(stack >= (std::size_t{4} << 20));
    CHECK(stops.load() == 1);
}

TEST_CASE("the builder validates the blocking-pool settings", "[spawn_blocking]") {
    auto b = eddy::runtime::builder::current_thread();
    CHECK_THROWS_AS(b.max_blocking_threads(0), std::invalid_argument);
    CHECK_THROWS_AS(b.thread_keep_alive(-1ms), std::invalid_argument);
    CHECK_THROWS_AS(b.max_file_threads(0), std::invalid_argument);
    CHECK_NOTHROW(b.max_blocking_threads(1).thread_keep_alive(0ms));
}

TEST_CASE("a blocking closure can spawn async tasks on its runtime", "[spawn_blocking]") {
    for (const auto& builder : {eddy::runtime::builder::current_thread(),
                                eddy::runtime::builder::multi_thread().worker_threads(2)}) {
        auto rt = builder.build();
        int v = rt.block_on([]() -> eddy::task<int> {
            auto inner = co_await eddy::spawn_blocking([] {
                auto h = eddy::runtime::handle::current();
                (void)h;
                return eddy::spawn([]() -> eddy::task<int> { co_return 40; });
            });
            co_return co_await inner + 2;
        }());
        CHECK(v == 42);
    }
}
