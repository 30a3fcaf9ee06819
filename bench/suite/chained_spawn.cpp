// chained_spawn: task i spawns task i+1 and finishes, to a depth of 100,000; the last one
// signals completion. 2 workers. Figure: ns per spawn. A `tokio` row follows: the same program
// with Tokio (tokio_program.hpp).

#include <eddy/eddy.hpp>

#include <condition_variable>
#include <mutex>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr int depth = 100'000;

/// The completion signal the main thread waits on.
struct done_signal {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;

    void set() {
        {
            std::lock_guard lock(m);
            done = true;
        }
        cv.notify_one();
    }
    void wait() {
        std::unique_lock lock(m);
        cv.wait(lock, [this] { return done; });
    }
};

eddy::task<> link(int remaining, done_signal* done) {
    if (remaining == 0) {
        done->set();
        co_return;
    }
    eddy::spawn(link(remaining - 1, done)).detach();
}

void chained_spawn() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    auto handle = rt.get_handle();
    const double ns = suite::median_ns([&] {
        done_signal done;
        const auto start = suite::clock::now();
        handle.spawn(link(depth, &done)).detach();
        done.wait();
        return suite::elapsed_ns(start);
    });
    suite::report("eddy", "chained_spawn", ns / depth, "ns/spawn");
    suite::report_tokio("chained_spawn", "ns/spawn");
}

const suite::registration reg{"chained_spawn", chained_spawn};

} // namespace
