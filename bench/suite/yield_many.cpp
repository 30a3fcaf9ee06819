// yield_many: 200 tasks each yield to the scheduler 1,000 times; wait for all. 2 workers.
// Figure: ns per yield. A `tokio` row follows: the same program with Tokio (tokio_program.hpp).

#include <eddy/eddy.hpp>

#include <vector>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr int tasks = 200;
constexpr int yields = 1'000;

eddy::task<> yielder() {
    for (int i = 0; i < yields; ++i)
        co_await eddy::yield_now();
}

eddy::task<double> run_all() {
    std::vector<eddy::join_handle<void>> handles;
    handles.reserve(tasks);
    const auto start = suite::clock::now();
    for (int i = 0; i < tasks; ++i)
        handles.push_back(eddy::spawn(yielder()));
    for (auto& h : handles)
        co_await h;
    co_return suite::elapsed_ns(start);
}

void yield_many() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double ns = suite::median_ns([&] { return rt.block_on(run_all()); });
    suite::report("eddy", "yield_many", ns / (tasks * yields), "ns/yield");
    suite::report_tokio("yield_many", "ns/yield");
}

const suite::registration reg{"yield_many", yield_many};

} // namespace
