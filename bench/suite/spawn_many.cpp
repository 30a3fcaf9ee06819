// spawn_many_1w: from inside a running task, spawn 100,000 tasks that each do
// counter.fetch_add(1), then wait for all of them; current-thread runtime. Figure: ns per task.

#include <eddy/eddy.hpp>

#include <atomic>
#include <vector>

#include "suite/suite.hpp"

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

void spawn_many_1w() {
    auto rt = eddy::runtime::builder::current_thread().build();
    const double ns = suite::median_ns([&] {
        std::atomic<long> counter{0};
        const double elapsed = rt.block_on(spawn_and_join(&counter));
        if (counter.load() != task_count)
            throw std::runtime_error("spawn_many_1w: lost tasks");
        return elapsed;
    });
    suite::report("eddy", "spawn_many_1w", ns / task_count, "ns/task");
}

const suite::registration reg{"spawn_many_1w", spawn_many_1w};

} // namespace
