// hello_world: spawn a few tasks, let them take turns with yield_now, join their results, and
// abort one that would run forever.
//
//     scripts/demo        (or: build/bin/hello_world)

#include <eddy/eddy.hpp>

#include <fmt/format.h>

#include <string>
#include <vector>

namespace {

// A worker that does its job in three steps, yielding to the others between steps.
eddy::task<std::string> greeter(std::string name, int steps) {
    for (int i = 1; i <= steps; ++i) {
        fmt::print("  {:<6} step {}/{}\n", name, i, steps);
        co_await eddy::yield_now();
    }
    co_return fmt::format("hello from {}", name);
}

eddy::task<> forever() {
    for (;;)
        co_await eddy::yield_now();
}

eddy::task<int> async_main() {
    fmt::print("spawning three greeters on a current-thread runtime:\n");
    std::vector<eddy::join_handle<std::string>> greeters;
    for (const char* name : {"alpha", "beta", "gamma"}) {
        greeters.push_back(eddy::spawn(greeter(name, 3)));
    }
    auto spinner = eddy::spawn(forever());

    for (auto& g : greeters) {
        std::string line = co_await g;
        fmt::print("joined: {}\n", line);
    }

    spinner.abort();
    try {
        co_await spinner;
    } catch (const eddy::join_error& e) {
        fmt::print("the endless task was aborted: {}\n", e.code().message());
    }
    co_return 0;
}

} // namespace

int main() {
    // A current-thread runtime keeps the interleaving deterministic for the demo; eddy::run would
    // use the multi-thread runtime and spread the greeters over its workers.
    auto rt = eddy::runtime::builder::current_thread().build();
    return rt.block_on(async_main());
}
