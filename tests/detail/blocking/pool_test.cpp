#include <eddy/join_handle.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>

#include <eddy/detail/blocking/pool.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/manual_event.hpp"

using namespace std::chrono_literals;
using eddy::detail::blocking_options;
using eddy::detail::blocking_pool;
using eddy::test::drop_counter;

#include "support/threads.hpp"

using eddy::test::baseline_thread_count;
using eddy::test::eventually;
using eddy::test::os_thread_count;

namespace {

blocking_options make_options(std::size_t max_threads = 512,
                              std::chrono::nanoseconds keep_alive = std::chrono::seconds(10)) {
    blocking_options o;
    o.max_threads = max_threads;
    o.keep_alive = keep_alive;
    return o;
}

/// One reference to a pool; shuts it down and drops the reference at scope exit.
class pool_ref {
public:
    explicit pool_ref(blocking_options o) : pool_(new blocking_pool(std::move(o))) {}
    pool_ref(const pool_ref&) = delete;
    pool_ref& operator=(const pool_ref&) = delete;
    ~pool_ref() {
        pool_->shutdown();
        pool_->release();
    }
    blocking_pool* operator->() const noexcept { return pool_; }
    blocking_pool& operator*() const noexcept { return *pool_; }

private:
    blocking_pool* pool_;
};

/// Spawns `f` straight onto `pool` from any thread (what spawn_blocking does on runtime threads).
template <class F>
auto spawn_on_pool(blocking_pool& pool, F f) {
    using R = std::invoke_result_t<F&>;
    return eddy::detail::spawn_on(pool, eddy::detail::invoke_blocking<R>(std::move(f)));
}

/// Spawns `f` onto `pool`'s file lane (what detail::spawn_file_op does on runtime threads).
template <class F>
auto spawn_file_on_pool(blocking_pool& pool, F f) {
    using R = std::invoke_result_t<F&>;
    return eddy::detail::spawn_with(pool, eddy::detail::invoke_blocking<R>(std::move(f)),
                                    [&pool](eddy::detail::task_header* t) { pool.spawn_file(t); });
}

blocking_options file_lane_options(std::size_t max_file_threads, std::size_t max_threads = 512) {
    blocking_options o = make_options(max_threads);
    o.max_file_threads = max_file_threads;
    return o;
}

/// Jobs that count how many of them run at once and block until released.
struct concurrency_probe {
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    std::atomic<int> finished{0};
    std::latch release{1};

    void run() {
        const int now = running.fetch_add(1) + 1;
        int seen = peak.load();
        while (seen < now && !peak.compare_exchange_weak(seen, now)) {
        }
        release.wait();
        running.fetch_sub(1);
        finished.fetch_add(1);
    }
};

/// Waits (bounded) for `h` to finish and returns its output; rethrows like `co_await h`.
template <class T>
T wait_take(eddy::join_handle<T>& h) {
    REQUIRE(eventually([&] { return h.is_finished(); }));
    return eddy::detail::join_access<T>::take(h);
}

template <class T>
bool is_cancelled(eddy::join_handle<T>& h) {
    try {
        (void)wait_take(h);
    } catch (const eddy::join_error& e) {
        return e.is_cancelled();
    }
    return false;
}

} // namespace

TEST_CASE("blocking pool starts threads on demand and reports its metrics", "[blocking_pool]") {
    pool_ref pool(make_options(1));
    CHECK(pool->thread_count() == 0);
    CHECK(pool->queue_depth() == 0);

    std::latch started{1};
    std::latch release{1};
    auto filler = spawn_on_pool(*pool, [&] {
        started.count_down();
        release.wait();
        return 10;
    });
    started.wait();
    std::vector<eddy::join_handle<int>> queued;
    for (int i = 0; i < 3; ++i)
        queued.push_back(spawn_on_pool(*pool, [i] { return i; }));
    CHECK(pool->thread_count() == 1);
    CHECK(pool->idle_thread_count() == 0);
    CHECK(pool->queue_depth() == 3);

    release.count_down();
    int sum = wait_take(filler);
    for (auto& h : queued)
        sum += wait_take(h);
    CHECK(sum == 13);
    CHECK(eventually([&] { return pool->idle_thread_count() == 1; }));
    CHECK(pool->queue_depth() == 0);
    CHECK(pool->thread_count() == 1);
}

TEST_CASE("blocking pool runs queued work in FIFO order", "[blocking_pool]") {
    pool_ref pool(make_options(1));
    std::latch started{1};
    std::latch release{1};
    std::vector<int> order; // touched by the single pool thread only, read after the joins
    auto filler = spawn_on_pool(*pool, [&] {
        started.count_down();
        release.wait();
    });
    started.wait();
    std::vector<eddy::join_handle<void>> hs;
    for (int i = 0; i < 5; ++i)
        hs.push_back(spawn_on_pool(*pool, [&order, i] { order.push_back(i); }));
    release.count_down();
    wait_take(filler);
    for (auto& h : hs)
        wait_take(h);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("blocking pool: spawn after shutdown cancels the task on the spot", "[blocking_pool]") {
    pool_ref pool(make_options());
    pool->shutdown();
    bool ran = false;
    int drops = 0;
    auto h = spawn_on_pool(*pool, [&ran, d = drop_counter(&drops)] { ran = true; });
    CHECK(h.is_finished());
    CHECK(is_cancelled(h));
    CHECK_FALSE(ran);
    CHECK(drops == 1);
    CHECK(pool->thread_count() == 0);
}

namespace {

/// Two threads spawn 150 jobs each into `pool` (a file-lane job unless `general(i)`), pausing now
/// and then; checks every job ran once and the pool's threads all exit afterwards.
template <class IsGeneral>
void spawn_racing_exits(blocking_pool& pool, IsGeneral general) {
    constexpr int per_thread = 150;
    std::atomic<int> runs{0};
    std::vector<eddy::join_handle<int>> hs[2];
    std::thread spawners[2];
    for (int s = 0; s < 2; ++s) {
        spawners[s] = std::thread([&, s] {
            for (int i = 0; i < per_thread; ++i) {
                auto job = [&runs, i] {
                    runs.fetch_add(1);
                    return i;
                };
                hs[s].push_back(general(i) ? spawn_on_pool(pool, job)
                                           : spawn_file_on_pool(pool, job));
                if (i % 8 == 0)
                    std::this_thread::sleep_for(50us);
            }
        });
    }
    for (auto& t : spawners)
        t.join();
    long sum = 0;
    for (auto& v : hs)
        for (auto& h : v)
            sum += wait_take(h);
    CHECK(runs.load() == 2 * per_thread);
    CHECK(sum == 2L * (per_thread - 1) * per_thread / 2);
    CHECK(eventually([&] { return pool.thread_count() == 0; }));
}

} // namespace

TEST_CASE("blocking pool with a zero keep-alive never loses a queued task", "[blocking_pool]") {
    // Threads exit the moment they find no work, so spawns keep racing exiting threads.
    pool_ref pool(make_options(3, 0ns));
    spawn_racing_exits(*pool, [](int) { return true; });
}

TEST_CASE("blocking pool shutdown waits for running tasks and tolerates repeated calls",
          "[blocking_pool]") {
    const std::size_t threads_before = baseline_thread_count();
    auto* pool = new blocking_pool(make_options());
    std::latch started{1};
    std::atomic<bool> done{false};
    auto h = spawn_on_pool(*pool, [&] {
        started.count_down();
        std::this_thread::sleep_for(30ms);
        done.store(true);
        return 3;
    });
    started.wait();
    h.abort(); // running: cannot be interrupted
    std::atomic<int> saw_done{0};
    std::thread other([&] {
        pool->shutdown();
        saw_done.fetch_add(done.load() ? 1 : 0);
    });
    pool->shutdown();
    saw_done.fetch_add(done.load() ? 1 : 0);
    other.join();
    pool->shutdown();
    CHECK(saw_done.load() == 2);
    CHECK(pool->thread_count() == 0);
    CHECK(wait_take(h) == 3);
    pool->release();
    // A joined thread can linger in /proc for a moment after pthread_join returns.
    CHECK(eventually([&] { return os_thread_count() == threads_before; }));
}

TEST_CASE("blocking pool released without shutdown joins its idle threads", "[blocking_pool]") {
    const std::size_t threads_before = baseline_thread_count();
    auto* pool = new blocking_pool(make_options(2));
    {
        std::latch both{2};
        auto a = spawn_on_pool(*pool, [&] { both.arrive_and_wait(); });
        auto b = spawn_on_pool(*pool, [&] { both.arrive_and_wait(); });
        wait_take(a);
        wait_take(b);
    }
    CHECK(eventually([&] { return pool->idle_thread_count() == 2; }));
    pool->release(); // last reference: the destructor shuts down and joins
    // A joined thread can linger in /proc for a moment after pthread_join returns.
    CHECK(eventually([&] { return os_thread_count() == threads_before; }));
}

TEST_CASE("blocking pool reports a detached task's exception to its hook", "[blocking_pool]") {
    std::atomic<std::uint64_t> reported{0};
    blocking_options o;
    o.unhandled_exception = [&](eddy::task_id id, std::exception_ptr) { reported.store(id.value); };
    pool_ref pool(std::move(o));
    std::latch detached{1};
    auto h = spawn_on_pool(*pool, [&detached] {
        detached.wait(); // throw only once nobody can join
        throw std::runtime_error("lost");
    });
    const std::uint64_t id = h.id().value;
    h.detach();
    detached.count_down();
    CHECK(eventually([&] { return reported.load() == id; }));
}

TEST_CASE("blocking pool threads expose the pool to spawn_blocking", "[blocking_pool]") {
    pool_ref pool(make_options());
    blocking_pool* self = &*pool;
    auto h = spawn_on_pool(*pool, [self] {
        return std::pair{eddy::detail::context().blocking == self, self->is_pool_thread()};
    });
    auto [ctx_ok, is_pool_thread] = wait_take(h);
    CHECK(ctx_ok);
    CHECK(is_pool_thread);
    CHECK_FALSE(pool->is_pool_thread());
}

TEST_CASE("blocking pool runs at most max_file_threads file jobs at once", "[blocking_pool]") {
    pool_ref pool(file_lane_options(2));
    concurrency_probe probe;
    std::vector<eddy::join_handle<void>> hs;
    for (int i = 0; i < 6; ++i)
        hs.push_back(spawn_file_on_pool(*pool, [&probe] { probe.run(); }));
    REQUIRE(eventually([&] { return probe.running.load() == 2; }));
    CHECK(pool->queue_depth() == 4);
    CHECK(pool->thread_count() == 2); // the lane starts no thread beyond its slots
    probe.release.count_down();
    for (auto& h : hs)
        wait_take(h);
    CHECK(probe.peak.load() == 2);
    CHECK(probe.finished.load() == 6);
    CHECK(pool->thread_count() == 2);
    CHECK(pool->queue_depth() == 0);
}

TEST_CASE("blocking pool runs file jobs in FIFO order", "[blocking_pool]") {
    pool_ref pool(file_lane_options(1));
    std::latch started{1};
    std::latch release{1};
    std::vector<int> order; // touched by the lane's single thread only, read after the joins
    auto filler = spawn_file_on_pool(*pool, [&] {
        started.count_down();
        release.wait();
    });
    started.wait();
    std::vector<eddy::join_handle<void>> hs;
    for (int i = 0; i < 5; ++i)
        hs.push_back(spawn_file_on_pool(*pool, [&order, i] { order.push_back(i); }));
    release.count_down();
    wait_take(filler);
    for (auto& h : hs)
        wait_take(h);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("blocking pool: an aborted queued file job is cancelled without running",
          "[blocking_pool]") {
    pool_ref pool(file_lane_options(1));
    std::latch started{1};
    std::latch release{1};
    auto filler = spawn_file_on_pool(*pool, [&] {
        started.count_down();
        release.wait();
        return 1;
    });
    started.wait();
    std::atomic<bool> ran{false};
    std::atomic<int> drops{0};
    auto victim = spawn_file_on_pool(
        *pool, [&ran, d = eddy::test::atomic_drop_counter(&drops)] { ran.store(true); });
    auto after = spawn_file_on_pool(*pool, [] { return 2; });
    victim.abort();
    release.count_down();
    CHECK(wait_take(filler) == 1);
    CHECK(is_cancelled(victim));
    CHECK(wait_take(after) == 2);
    CHECK_FALSE(ran.load());
    CHECK(drops.load() == 1);
}

TEST_CASE("blocking pool shutdown cancels queued file jobs and waits for running ones",
          "[blocking_pool]") {
    auto* pool = new blocking_pool(file_lane_options(2));
    concurrency_probe probe;
    std::vector<eddy::join_handle<void>> running;
    for (int i = 0; i < 2; ++i)
        running.push_back(spawn_file_on_pool(*pool, [&probe] { probe.run(); }));
    REQUIRE(eventually([&] { return probe.running.load() == 2; }));
    std::atomic<int> ran_queued{0};
    std::atomic<int> drops{0};
    std::vector<eddy::join_handle<void>> queued;
    for (int i = 0; i < 3; ++i) {
        queued.push_back(
            spawn_file_on_pool(*pool, [&ran_queued, d = eddy::test::atomic_drop_counter(&drops)] {
                ran_queued.fetch_add(1);
            }));
    }
    std::atomic<bool> shut{false};
    std::thread closer([&] {
        pool->shutdown();
        shut.store(true);
    });
    // Shutdown cancels the queued jobs at once, then waits for the running ones.
    for (auto& h : queued)
        CHECK(is_cancelled(h));
    CHECK(drops.load() == 3);
    CHECK_FALSE(shut.load());
    CHECK(probe.running.load() == 2);
    probe.release.count_down();
    closer.join();
    CHECK(shut.load());
    for (auto& h : running)
        wait_take(h); // ran to the end: not cancelled
    CHECK(probe.finished.load() == 2);
    CHECK(ran_queued.load() == 0);
    CHECK(pool->thread_count() == 0);
    // After shutdown a file job is cancelled on the spot.
    auto late = spawn_file_on_pool(*pool, [] { return 1; });
    CHECK(late.is_finished());
    CHECK(is_cancelled(late));
    pool->release();
}

TEST_CASE("blocking pool: general closures do not wait for a busy file lane, nor file jobs for "
          "busy general closures",
          "[blocking_pool]") {
    pool_ref pool(file_lane_options(1));
    SECTION("a general closure runs while the lane's only slot is taken") {
        concurrency_probe lane;
        auto busy = spawn_file_on_pool(*pool, [&lane] { lane.run(); });
        auto queued = spawn_file_on_pool(*pool, [] { return 1; });
        REQUIRE(eventually([&] { return lane.running.load() == 1; }));
        auto general = spawn_on_pool(*pool, [] { return 2; });
        CHECK(wait_take(general) == 2);
        CHECK_FALSE(queued.is_finished());
        lane.release.count_down();
        wait_take(busy);
        CHECK(wait_take(queued) == 1);
    }
    SECTION("a file job runs while general closures block") {
        concurrency_probe general;
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 3; ++i)
            hs.push_back(spawn_on_pool(*pool, [&general] { general.run(); }));
        REQUIRE(eventually([&] { return general.running.load() == 3; }));
        auto file = spawn_file_on_pool(*pool, [] { return 3; });
        CHECK(wait_take(file) == 3);
        general.release.count_down();
        for (auto& h : hs)
            wait_take(h);
    }
}

TEST_CASE("blocking pool at its thread cap alternates between file jobs and general closures",
          "[blocking_pool]") {
    // One thread for everything: with both queues backed up, neither may starve the other.
    pool_ref pool(file_lane_options(1, 1));
    std::latch started{1};
    std::latch release{1};
    std::vector<std::string> order; // touched by the single pool thread only
    auto first = spawn_on_pool(*pool, [&] {
        order.emplace_back("g0");
        started.count_down();
        release.wait();
    });
    started.wait();
    std::vector<eddy::join_handle<void>> hs;
    auto general = [&pool, &order](std::string name) {
        return spawn_on_pool(*pool, [&order, name] { order.push_back(name); });
    };
    auto file = [&pool, &order](std::string name) {
        return spawn_file_on_pool(*pool, [&order, name] { order.push_back(name); });
    };
    hs.push_back(general("g1"));
    hs.push_back(file("f1"));
    hs.push_back(file("f2"));
    hs.push_back(general("g2"));
    hs.push_back(general("g3"));
    hs.push_back(file("f3"));
    release.count_down();
    wait_take(first);
    for (auto& h : hs)
        wait_take(h);
    CHECK(order == std::vector<std::string>{"g0", "f1", "g1", "f2", "g2", "f3", "g3"});
}

TEST_CASE("blocking pool: a general closure may wait for file jobs it spawns", "[blocking_pool]") {
    pool_ref pool(file_lane_options(1, 2));
    blocking_pool* self = &*pool;
    auto outer = spawn_on_pool(*pool, [self] {
        int sum = 0;
        for (int i = 0; i < 3; ++i) {
            auto h = spawn_file_on_pool(*self, [i] { return i + 1; });
            while (!h.is_finished())
                std::this_thread::yield();
            sum += eddy::detail::join_access<int>::take(h);
        }
        return sum;
    });
    CHECK(wait_take(outer) == 6);
}

TEST_CASE("blocking pool with a zero keep-alive never loses a queued file job", "[blocking_pool]") {
    // Threads exit the moment they find no work, so file jobs and general closures keep racing
    // exiting threads and each other for the lane's slots.
    blocking_options o = file_lane_options(2, 3);
    o.keep_alive = 0ns;
    pool_ref pool(std::move(o));
    spawn_racing_exits(*pool, [](int i) { return i % 3 == 0; });
}
