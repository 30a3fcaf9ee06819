// timer_churn: 1,000,000 times, wrap an already-ready awaitable in timeout(1 s) and await it.
// As in Tokio (which registers a timer only when the inner future is pending), an operation that
// is ready at once never touches the timer wheel: this measures timeout's fixed cost.
//   extra figure task=: the same with an inner task that completes without suspending.
// timer_churn_armed: 1,000,000 times, timeout(1 s, yield_now()): the inner operation suspends
// once, so the timer is really inserted into the wheel and cancelled when the operation wins.
//   extra figure yield=: a bare yield_now() in the same loop, the part that is not the timer.
// Multi-thread runtime, 2 workers, one task doing the loop. Figure: ns per op.
// Each is followed by a `tokio` row (tokio_program.hpp): timer_churn's runs the same loops with
// tokio::time::timeout. timer_churn_armed's figure is sleep(1 s) polled once (registered) and
// dropped (cancelled), the bare timer insert and cancel that Tokio's published figure measures;
// this loop is its timeout_yield=, slowed in Tokio 1.24 by yield_now's deferred wake (the worker
// polls its driver before the task runs again), which its yield= shows.

#include <eddy/eddy.hpp>

#include <fmt/format.h>

#include <coroutine>
#include <stdexcept>
#include <string>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int ops = 1'000'000;

eddy::task<int> ready_task(int v) {
    co_return v;
}

enum class kind { ready_awaiter, ready_task, armed, yield_only };

eddy::task<double> churn(kind k) {
    int ok = 0;
    const auto start = suite::clock::now();
    for (int i = 0; i < ops; ++i) {
        switch (k) {
        case kind::ready_awaiter: {
            auto r = co_await eddy::timeout(1s, std::suspend_never{});
            ok += r.has_value() ? 1 : 0;
            break;
        }
        case kind::ready_task: {
            auto r = co_await eddy::timeout(1s, ready_task(1));
            ok += r.has_value() ? *r : 0;
            break;
        }
        case kind::armed: {
            auto r = co_await eddy::timeout(1s, eddy::yield_now());
            ok += r.has_value() ? 1 : 0;
            break;
        }
        case kind::yield_only:
            co_await eddy::yield_now();
            ++ok;
            break;
        }
    }
    const double ns = suite::elapsed_ns(start);
    if (ok != ops)
        throw std::runtime_error("timer_churn: an operation timed out");
    co_return ns / ops;
}

double measure(eddy::runtime& rt, kind k) {
    return suite::median_ns([&] { return rt.block_on(churn(k)); });
}

void timer_churn() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double ready = measure(rt, kind::ready_awaiter);
    const double task = measure(rt, kind::ready_task);
    suite::report("eddy", "timer_churn", ready, "ns/op", fmt::format("task={:.1f}", task));
    suite::report_tokio("timer_churn", "ns/op");
}

void timer_churn_armed() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double armed = measure(rt, kind::armed);
    const double yield = measure(rt, kind::yield_only);
    if (rt.get_handle().metrics().active_timers != 0)
        throw std::runtime_error("timer_churn_armed: timers left registered");
    suite::report("eddy", "timer_churn_armed", armed, "ns/op", fmt::format("yield={:.1f}", yield));
    suite::report_tokio("timer_churn_armed", "ns/op");
}

const suite::registration reg{"timer_churn", timer_churn};
const suite::registration reg_armed{"timer_churn_armed", timer_churn_armed};

} // namespace
