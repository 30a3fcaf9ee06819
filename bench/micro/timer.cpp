// Micro benchmarks of the time driver: registering a timer and cancelling it before it fires
// (what every timeout that is not reached costs), with one wheel for all threads versus one
// shard per thread, at 1 and 2 threads; and the clock read timers start from.

#include <eddy/eddy.hpp>

#include <eddy/detail/time/driver.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

namespace {

using eddy::detail::time_driver;
using eddy::detail::timer_registration;

// A wake target that does nothing: these timers never fire.
void noop(eddy::detail::wake_target*) noexcept {
}
constexpr eddy::detail::wake_vtable noop_vtable{&noop, &noop, &noop, &noop};
eddy::detail::wake_target noop_target{&noop_vtable};

template <bool Sharded>
void arm_and_cancel(benchmark::State& state) {
    // One driver per variant for the whole program (the threads of a run share it).
    static time_driver driver(Sharded ? 2 : 1, false);
    timer_registration reg;
    const auto deadline = driver.source().now() + std::chrono::seconds(1);
    const auto shard = static_cast<std::uint32_t>(state.thread_index());
    for (auto _ : state) {
        eddy::waker w(&noop_target);
        driver.arm(reg, deadline, w, shard);
        driver.disarm(reg);
    }
}
BENCHMARK(arm_and_cancel<false>)->Name("arm_and_cancel/one_wheel")->Threads(1)->Threads(2);
BENCHMARK(arm_and_cancel<true>)->Name("arm_and_cancel/sharded")->Threads(1)->Threads(2);

void clock_now(benchmark::State& state) {
    for (auto _ : state)
        benchmark::DoNotOptimize(eddy::clock::now());
}
BENCHMARK(clock_now);

} // namespace
