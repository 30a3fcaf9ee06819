// sleep_many: spawn 100,000 tasks, each sleeping a duration uniform in [1, 1000] ms (fixed seed),
// and wait for all. Figures: wall time over the ideal 1,000 ms (the longest sleep), and the
// process's peak resident memory. Multi-thread runtime, 2 workers. Each repetition runs in a
// fresh child process so the peak is its own. A `tokio` row follows: the same program with
// Tokio, the same durations (its own std::mt19937), one process per repetition.

#include <eddy/eddy.hpp>

#include <fmt/format.h>

#include <chrono>
#include <random>
#include <stdexcept>
#include <vector>

#include "suite/rss.hpp"
#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr int task_count = 100'000;

struct figures {
    double over_ms;
    double peak_mib;
};

eddy::task<double> sleep_all() {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> ms(1, 1000);
    std::vector<eddy::join_handle<void>> handles;
    handles.reserve(task_count);
    const auto start = suite::clock::now();
    for (int i = 0; i < task_count; ++i)
        handles.push_back(eddy::spawn(eddy::sleep(std::chrono::milliseconds(ms(rng)))));
    for (auto& h : handles)
        co_await h;
    co_return suite::elapsed_ns(start) / 1e6;
}

figures once() {
    suite::reset_peak_rss();
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double wall_ms = rt.block_on(sleep_all());
    if (rt.get_handle().metrics().active_timers != 0)
        throw std::runtime_error("sleep_many: timers left registered");
    return figures{wall_ms - 1000.0, static_cast<double>(suite::status_kib("VmHWM")) / 1024.0};
}

void sleep_many() {
    std::vector<double> over;
    std::vector<double> peak;
    for (int i = 0; i < suite::repetitions; ++i) {
        const figures f = suite::in_child_process<figures>("sleep_many");
        over.push_back(f.over_ms);
        peak.push_back(f.peak_mib);
    }
    suite::report("eddy", "sleep_many", suite::median(over), "ms_over_ideal",
                  fmt::format("peak_rss_mib={:.1f}", suite::median(peak)));
    suite::report_tokio("sleep_many", "ms_over_ideal", suite::tokio_processes::one_per_repetition);
}

const suite::registration reg{"sleep_many", sleep_many};
const suite::child_registration child{"sleep_many", suite::figures_bytes<figures, once>};

} // namespace
