// Micro benchmarks of the channels on a current-thread runtime: uncontended try_send + try_recv
// (bounded, unbounded, oneshot), and send + recv awaited inside one task.

#include <eddy/eddy.hpp>
#include <eddy/sync/mpsc.hpp>
#include <eddy/sync/oneshot.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>

namespace {

void mpsc_try_send_try_recv(benchmark::State& state) {
    auto [tx, rx] = eddy::mpsc::channel<std::uint64_t>(1024);
    std::uint64_t i = 0;
    for (auto _ : state) {
        auto s = tx.try_send(i++);
        benchmark::DoNotOptimize(s);
        auto r = rx.try_recv();
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(mpsc_try_send_try_recv);

void mpsc_unbounded_send_try_recv(benchmark::State& state) {
    auto [tx, rx] = eddy::mpsc::unbounded_channel<std::uint64_t>();
    std::uint64_t i = 0;
    for (auto _ : state) {
        auto s = tx.send(i++);
        benchmark::DoNotOptimize(s);
        auto r = rx.try_recv();
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(mpsc_unbounded_send_try_recv);

void mpsc_send_recv_in_task(benchmark::State& state) {
    auto rt = eddy::runtime::builder::current_thread().build();
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<std::uint64_t>(1024);
        std::uint64_t i = 0;
        for (auto _ : state) {
            auto s = co_await tx.send(i++);
            benchmark::DoNotOptimize(s);
            auto r = co_await rx.recv();
            benchmark::DoNotOptimize(r);
        }
    }(state));
}
BENCHMARK(mpsc_send_recv_in_task);

void mpsc_batch_send_recv_many_in_task(benchmark::State& state) {
    auto rt = eddy::runtime::builder::current_thread().build();
    rt.block_on([](benchmark::State& state) -> eddy::task<> {
        auto [tx, rx] = eddy::mpsc::channel<std::uint64_t>(64);
        std::vector<std::uint64_t> buf;
        buf.reserve(64);
        for (auto _ : state) {
            for (std::uint64_t i = 0; i < 64; ++i)
                (void)co_await tx.send(i);
            buf.clear();
            auto n = co_await rx.recv_many(buf, 64);
            benchmark::DoNotOptimize(n);
        }
        state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
    }(state));
}
BENCHMARK(mpsc_batch_send_recv_many_in_task);

void oneshot_create_send_recv(benchmark::State& state) {
    for (auto _ : state) {
        auto [tx, rx] = eddy::oneshot::channel<std::uint64_t>();
        (void)tx.send(1);
        auto r = rx.try_recv();
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(oneshot_create_send_recv);

} // namespace
