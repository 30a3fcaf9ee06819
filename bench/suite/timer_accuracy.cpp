// timer_accuracy: how late `sleep(10ms)` wakes. One task sleeps 10 ms 200 times and records
// (time awake - time asleep - 10 ms); figures are the median (p50) and p99 of those in
// microseconds. `timer_accuracy_idle`: nothing else runs. `timer_accuracy_10k`: meanwhile 10,000
// other tasks keep sleeping random durations in [1, 50] ms, so the wheel holds ~10,000 timers
// and fires ~400 per millisecond. Multi-thread runtime, 2 workers. (Not one of SUITE.md's
// workloads: the time layer's own figure.)

#include <eddy/eddy.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "suite/suite.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int samples = 200;
constexpr int background_tasks = 10'000;

eddy::task<std::vector<double>> measure_lateness() {
    std::vector<double> late_us;
    late_us.reserve(samples);
    for (int i = 0; i < samples; ++i) {
        const auto start = std::chrono::steady_clock::now();
        co_await eddy::sleep(10ms);
        const auto slept = std::chrono::steady_clock::now() - start;
        late_us.push_back(std::chrono::duration<double, std::micro>(slept - 10ms).count());
    }
    co_return late_us;
}

eddy::task<> background(unsigned seed, std::shared_ptr<std::atomic<bool>> stop) {
    std::minstd_rand rng(seed);
    while (!stop->load(std::memory_order_relaxed))
        co_await eddy::sleep(std::chrono::milliseconds(1 + rng() % 50));
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    return v[i];
}

void report(const char* name, const std::vector<double>& late) {
    suite::report("eddy", name, percentile(late, 0.5), "us_late_p50",
                  fmt::format("p99={:.1f}", percentile(late, 0.99)));
}

void timer_accuracy() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    report("timer_accuracy_idle", rt.block_on(measure_lateness()));

    auto stop = std::make_shared<std::atomic<bool>>(false);
    std::vector<eddy::join_handle<void>> bg;
    for (int i = 0; i < background_tasks; ++i)
        bg.push_back(rt.spawn(background(static_cast<unsigned>(i + 1), stop)));
    rt.block_on(eddy::sleep(100ms)); // let them spread out
    report("timer_accuracy_10k", rt.block_on(measure_lateness()));
    stop->store(true);
    for (auto& h : bg)
        rt.block_on(std::move(h));
}

const suite::registration reg{"timer_accuracy", timer_accuracy};

} // namespace
