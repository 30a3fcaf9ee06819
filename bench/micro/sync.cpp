// Micro benchmarks of the synchronization primitives inside a task on a current-thread runtime:
// the uncontended paths (one compare-and-swap each way for mutex and semaphore), notify's permit
// round trip, and a contended hand-off between two tasks for comparison.

#include <eddy/eddy.hpp>
#include <eddy/sync/barrier.hpp>
#include <eddy/sync/cancellation_token.hpp>
#include <eddy/sync/mutex.hpp>
#include <eddy/sync/notify.hpp>
#include <eddy/sync/rw_lock.hpp>
#include <eddy/sync/semaphore.hpp>

#include <benchmark/benchmark.h>

namespace {

auto make_rt() {
    return eddy::runtime::builder::current_thread().build();
}

void mutex_lock_unlock(benchmark::State& state) {
    eddy::mutex<long> m(0);
    auto rt = make_rt();
    rt.block_on([](benchmark::State& state, eddy::mutex<long>& m) -> eddy::task<> {
        for (auto _ : state) {
            auto g = co_await m.lock();
            ++*g;
        }
    }(state, m));
    benchmark::DoNotOptimize(m.get_mut());
}
BENCHMARK(mutex_lock_unlock);

void mutex_try_lock(benchmark::State& state) {
    eddy::mutex<long> m(0);
    for (auto _ : state) {
        auto g = m.try_lock();
        ++**g;
    }
    benchmark::DoNotOptimize(m.get_mut());
}
BENCHMARK(mutex_try_lock);

void semaphore_acquire_release(benchmark::State& state) {
    eddy::semaphore s(4);
    auto rt = make_rt();
    rt.block_on([](benchmark::State& state, eddy::semaphore& s) -> eddy::task<> {
        for (auto _ : state) {
            auto p = co_await s.acquire();
            benchmark::DoNotOptimize(p);
        }
    }(state, s));
}
BENCHMARK(semaphore_acquire_release);

void rw_lock_read(benchmark::State& state) {
    eddy::rw_lock<long> l(0);
    auto rt = make_rt();
    rt.block_on([](benchmark::State& state, eddy::rw_lock<long>& l) -> eddy::task<> {
        for (auto _ : state) {
            auto r = co_await l.read();
            benchmark::DoNotOptimize(*r);
        }
    }(state, l));
}
BENCHMARK(rw_lock_read);

void notify_one_then_notified(benchmark::State& state) {
    eddy::notify n;
    auto rt = make_rt();
    rt.block_on([](benchmark::State& state, eddy::notify& n) -> eddy::task<> {
        for (auto _ : state) {
            n.notify_one();
            co_await n.notified();
        }
    }(state, n));
}
BENCHMARK(notify_one_then_notified);

// Two tasks take turns: each lock is handed over through the waiter queue and a wake-up.
void mutex_handoff_two_tasks(benchmark::State& state) {
    eddy::mutex<long> m(0);
    auto rt = make_rt();
    rt.block_on([](benchmark::State& state, eddy::mutex<long>& m) -> eddy::task<> {
        bool stop = false;
        auto other = eddy::spawn([](eddy::mutex<long>& m, bool& stop) -> eddy::task<> {
            while (!stop) {
                auto g = co_await m.lock();
                ++*g;
                co_await eddy::yield_now();
            }
        }(m, stop));
        for (auto _ : state) {
            auto g = co_await m.lock();
            ++*g;
            co_await eddy::yield_now();
        }
        stop = true;
        co_await other;
    }(state, m));
}
BENCHMARK(mutex_handoff_two_tasks);

void cancellation_token_child(benchmark::State& state) {
    eddy::cancellation_token root;
    for (auto _ : state) {
        auto child = root.child_token();
        benchmark::DoNotOptimize(child);
    }
}
BENCHMARK(cancellation_token_child);

void barrier_wait_single(benchmark::State& state) {
    eddy::barrier b(1);
    auto rt = make_rt();
    rt.block_on([](benchmark::State& state, eddy::barrier& b) -> eddy::task<> {
        for (auto _ : state) {
            auto r = co_await b.wait();
            benchmark::DoNotOptimize(r);
        }
    }(state, b));
}
BENCHMARK(barrier_wait_single);

} // namespace
