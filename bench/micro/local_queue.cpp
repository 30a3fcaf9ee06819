// Micro benchmarks of the multi-thread scheduler's run queue: owner push/pop, overflow to the
// inject queue, and a thief stealing half.

#include <eddy/detail/scheduler/inject_queue.hpp>
#include <eddy/detail/scheduler/multi_thread/local_queue.hpp>
#include <eddy/detail/task/header.hpp>

#include <benchmark/benchmark.h>

#include <deque>

namespace {

using eddy::detail::inject_queue;
using eddy::detail::local_queue;
using eddy::detail::task_header;

// Stand-in tasks: the queues only move pointers; these are never polled.
struct fake_tasks {
    explicit fake_tasks(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            headers.emplace_back(0U);
    }
    task_header* operator[](std::size_t i) { return &headers[i]; }
    std::deque<task_header> headers;
};

void push_pop(benchmark::State& state) {
    local_queue<> q;
    inject_queue inject;
    fake_tasks tasks(1);
    for (auto _ : state) {
        (void)q.push_back(tasks[0], inject);
        benchmark::DoNotOptimize(q.pop());
    }
}
BENCHMARK(push_pop);

void fill_and_drain(benchmark::State& state) {
    local_queue<> q;
    inject_queue inject;
    fake_tasks tasks(local_queue<>::capacity);
    for (auto _ : state) {
        for (std::size_t i = 0; i < local_queue<>::capacity; ++i)
            (void)q.push_back(tasks[i], inject);
        while (task_header* t = q.pop())
            benchmark::DoNotOptimize(t);
    }
    state.SetItemsProcessed(state.iterations() * local_queue<>::capacity);
}
BENCHMARK(fill_and_drain);

void overflow_to_inject(benchmark::State& state) {
    local_queue<> q;
    inject_queue inject;
    fake_tasks tasks(local_queue<>::capacity + 1);
    for (auto _ : state) {
        for (std::size_t i = 0; i <= local_queue<>::capacity; ++i)
            (void)q.push_back(tasks[i], inject);
        while (task_header* t = q.pop())
            benchmark::DoNotOptimize(t);
        while (task_header* t = inject.pop())
            benchmark::DoNotOptimize(t);
    }
    state.SetItemsProcessed(state.iterations() * (local_queue<>::capacity + 1));
}
BENCHMARK(overflow_to_inject);

void steal_half(benchmark::State& state) {
    local_queue<> victim;
    local_queue<> thief;
    inject_queue inject;
    fake_tasks tasks(local_queue<>::capacity);
    for (auto _ : state) {
        state.PauseTiming();
        for (std::size_t i = 0; i < local_queue<>::capacity; ++i)
            (void)victim.push_back(tasks[i], inject);
        state.ResumeTiming();
        benchmark::DoNotOptimize(victim.steal_into(thief));
        state.PauseTiming();
        while (victim.pop() != nullptr) {
        }
        while (thief.pop() != nullptr) {
        }
        state.ResumeTiming();
    }
}
BENCHMARK(steal_half);

} // namespace
