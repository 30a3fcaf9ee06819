// chained_spawn: task i spawns task i+1 and finishes, to a depth of 100,000; the last one
// signals completion. 2 workers. Figure: ns per spawn.

#include <eddy/eddy.hpp>

#include <atomic>

#include "suite/suite.hpp"

namespace {

constexpr int depth = 100'000;

eddy::task<> link(int remaining, std::atomic<bool>* done) {
    if (remaining == 0) {
        done->store(true, std::memory_order_release);
        done->notify_one();
        co_return;
    }
    eddy::spawn(link(remaining - 1, done)).detach();
}

void chained_spawn() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    auto handle = rt.get_handle();
    const double ns = suite::median_ns([&] {
        std::atomic<bool> done{false};
        const auto start = suite::clock::now();
        handle.spawn(link(depth, &done)).detach();
        done.wait(false, std::memory_order_acquire);
        return suite::elapsed_ns(start);
    });
    suite::report("eddy", "chained_spawn", ns / depth, "ns/spawn");
}

const suite::registration reg{"chained_spawn", chained_spawn};

} // namespace
