// Micro benchmarks of the task core on a current-thread runtime: awaiting a ready task,
// spawn + join, and a yield round trip through the run queue.

#include <eddy/eddy.hpp>

#include <benchmark/benchmark.h>

namespace {

eddy::task<int> ready(int v) {
    co_return v;
}

void await_ready_task(benchmark::State& state) {
    auto rt = eddy::runtime::builder::current_thread().build();
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        for (auto _ : state) {
            int v = co_await ready(1);
            benchmark::DoNotOptimize(v);
        }
    }(state));
}
BENCHMARK(await_ready_task);

void spawn_and_join(benchmark::State& state) {
    auto rt = eddy::runtime::builder::current_thread().build();
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        for (auto _ : state) {
            int v = co_await eddy::spawn(ready(1));
            benchmark::DoNotOptimize(v);
        }
    }(state));
}
BENCHMARK(spawn_and_join);

void yield_round_trip(benchmark::State& state) {
    auto rt = eddy::runtime::builder::current_thread().build();
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        for (auto _ : state)
            co_await eddy::yield_now();
    }(state));
}
BENCHMARK(yield_round_trip);

} // namespace
