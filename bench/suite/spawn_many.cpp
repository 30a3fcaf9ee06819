// spawn_many / spawn_many_1w: from inside a running task, spawn 100,000 tasks that each do
// counter.fetch_add(1), then wait for all of them (join handles). spawn_many uses the
// multi-thread runtime with 2 workers, spawn_many_1w the current-thread runtime.
// Figure: ns per task. Each is followed by a `tokio` row: the same program with Tokio (the
// matching runtime flavour; tokio_program.hpp).

#include <eddy/eddy.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr int task_count = 100'000;

eddy::task<> bump(std::atomic<long>* counter) {
    counter->fetch_add(1, std::memory_order_relaxed);
    co_return;
}

eddy::task<double> spawn_and_join(std::atomic<long>* counter) {
    std::vector<eddy::join_handle<void>> handles;
    handles.reserve(task_count);
    const auto start = suite::clock::now();
    for (int i = 0; i < task_count; ++i)
        handles.push_back(eddy::spawn(bump(counter)));
    for (auto& h : handles)
        co_await h;
    co_return suite::elapsed_ns(start);
}

void measure(eddy::runtime& rt, const char* name) {
    const double ns = suite::median_ns([&] {
        std::atomic<long> counter{0};
        const double elapsed = rt.block_on(spawn_and_join(&counter));
        if (counter.load() != task_count)
            throw std::runtime_error("spawn_many: lost tasks");
        return elapsed;
    });
    suite::report("eddy", name, ns / task_count, "ns/task");
    suite::report_tokio(name, "ns/task");
}

void spawn_many() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    measure(rt, "spawn_many");
}

void spawn_many_1w() {
    auto rt = eddy::runtime::builder::current_thread().build();
    measure(rt, "spawn_many_1w");
}

const suite::registration reg{"spawn_many", spawn_many};
const suite::registration reg_1w{"spawn_many_1w", spawn_many_1w};

} // namespace
