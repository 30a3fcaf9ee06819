// fan_out_fan_in: from inside a task, spawn 10,000 tasks into a join_set, each doing one
// yield_now(), and collect every result through join_next() in completion order. Multi-thread
// runtime, 2 workers. Figure: ns per task. (Compare with spawn_many: the join_set's own cost.)
// A `tokio` row follows: the same program with tokio::task::JoinSet (tokio_program.hpp).

#include <eddy/eddy.hpp>

#include <stdexcept>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr int task_count = 10'000;

eddy::task<int> member(int i) {
    co_await eddy::yield_now();
    co_return i;
}

eddy::task<double> fan_out_fan_in_once() {
    const auto start = suite::clock::now();
    eddy::join_set<int> set;
    for (int i = 0; i < task_count; ++i)
        set.spawn(member(i));
    long sum = 0;
    for (;;) {
        auto r = co_await set.join_next();
        if (!r)
            break;
        sum += r->take();
    }
    const double ns = suite::elapsed_ns(start);
    if (sum != static_cast<long>(task_count) * (task_count - 1) / 2)
        throw std::runtime_error("fan_out_fan_in: lost results");
    co_return ns;
}

void fan_out_fan_in() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double ns = suite::median_ns([&] { return rt.block_on(fan_out_fan_in_once()); });
    suite::report("eddy", "fan_out_fan_in", ns / task_count, "ns/task");
    suite::report_tokio("fan_out_fan_in", "ns/task");
}

const suite::registration reg{"fan_out_fan_in", fan_out_fan_in};

} // namespace
