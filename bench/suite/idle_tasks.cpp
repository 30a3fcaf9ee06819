// idle_tasks: spawn 1,000,000 tasks that each await a signal fired only at the end; resident
// memory with all of them suspended, minus before spawning, divided by 1e6. 2 workers. Each
// repetition runs in a fresh child process, so memory kept by one does not hide the next.
// Figure: bytes per idle task. A `tokio` row follows: the same program with Tokio, the signal a
// tokio::sync::Notify (intrusive waiters too), one process per repetition (tokio_program.hpp).

#include <eddy/eddy.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "suite/gate.hpp"
#include "suite/rss.hpp"
#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr long task_count = 1'000'000;

eddy::task<> idle_task(suite::gate* g, std::atomic<long>* waiting, std::atomic<long>* done) {
    waiting->fetch_add(1, std::memory_order_relaxed);
    co_await g->wait();
    done->fetch_add(1, std::memory_order_relaxed);
}

double bytes_per_idle_task() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    auto handle = rt.get_handle();
    suite::gate g;
    std::atomic<long> waiting{0};
    std::atomic<long> done{0};
    rt.block_on(eddy::yield_now()); // workers up and warm
    const long before_kib = suite::status_kib("VmRSS");
    for (long i = 0; i < task_count; ++i)
        handle.spawn(idle_task(&g, &waiting, &done)).detach();
    while (waiting.load() < task_count)
        std::this_thread::yield();
    const long after_kib = suite::status_kib("VmRSS");
    g.open();
    while (done.load() < task_count)
        std::this_thread::yield();
    return static_cast<double>(after_kib - before_kib) * 1024.0 / static_cast<double>(task_count);
}

void idle_tasks() {
    std::vector<double> samples;
    for (int i = 0; i < suite::repetitions; ++i) {
        samples.push_back(suite::in_child_process("idle_tasks"));
    }
    suite::report("eddy", "idle_tasks", suite::median(samples), "bytes/task");
    suite::report_tokio("idle_tasks", "bytes/task", suite::tokio_processes::one_per_repetition);
}

const suite::registration reg{"idle_tasks", idle_tasks};
const suite::child_registration child{"idle_tasks",
                                      suite::figures_bytes<double, bytes_per_idle_task>};

} // namespace
