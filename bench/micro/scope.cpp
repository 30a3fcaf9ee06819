// Micro benchmarks of eddy::scope: spawning 1,000 children that finish at once and joining them,
// against the same fan-out through a join_set<int> (joined one by one), on both runtime flavors.

#include <eddy/join_set.hpp>
#include <eddy/runtime.hpp>
#include <eddy/scope.hpp>
#include <eddy/task.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

namespace {

constexpr int children = 1'000;

eddy::runtime make_rt(bool multi) {
    return multi ? eddy::runtime::builder::multi_thread().worker_threads(2).build()
                 : eddy::runtime::builder::current_thread().build();
}

eddy::task<> child(long* slot) {
    ++*slot;
    co_return;
}

/// Joins every member, one by one.
eddy::task<> drain(eddy::join_set<int>& set) {
    while (!set.empty()) {
        auto r = co_await set.join_next();
        benchmark::DoNotOptimize(r.has_value());
    }
}

// (join_set<int>: GCC 12 at -O2 reports a false -Wmaybe-uninitialized in join_set<void>'s
// join_result here.)
eddy::task<int> int_child(long* slot) {
    ++*slot;
    co_return 0;
}

void scope_spawn_join(benchmark::State& state) {
    auto rt = make_rt(state.range(0) != 0);
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        std::vector<long> slots(children, 0);
        for (auto _ : state) {
            eddy::scope s;
            for (int i = 0; i < children; ++i)
                s.spawn(child(&slots[static_cast<std::size_t>(i)]));
            auto r = co_await s.join();
            benchmark::DoNotOptimize(r);
        }
        benchmark::DoNotOptimize(slots.data());
    }(state));
    state.SetItemsProcessed(state.iterations() * children);
}
BENCHMARK(scope_spawn_join)->Arg(0)->Arg(1)->ArgName("multi_thread");

void join_set_spawn_join(benchmark::State& state) {
    auto rt = make_rt(state.range(0) != 0);
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        std::vector<long> slots(children, 0);
        for (auto _ : state) {
            eddy::join_set<int> set;
            for (int i = 0; i < children; ++i)
                set.spawn(int_child(&slots[static_cast<std::size_t>(i)]));
            co_await drain(set);
        }
        benchmark::DoNotOptimize(slots.data());
    }(state));
    state.SetItemsProcessed(state.iterations() * children);
}
BENCHMARK(join_set_spawn_join)->Arg(0)->Arg(1)->ArgName("multi_thread");

} // namespace
