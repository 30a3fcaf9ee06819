// ping_pong: two tasks bounce a token through two bounded mpsc channels (capacity 1), 100,000
// round trips, on the multi-thread runtime with 2 workers. Figure: ns per round trip.
// A `tokio` row follows: the same program with Tokio (tokio_program.hpp, report_tokio).

#include <eddy/eddy.hpp>
#include <eddy/sync/mpsc.hpp>

#include <cstdint>
#include <stdexcept>
#include <utility>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr std::uint64_t round_trips = 100'000;

eddy::task<> pong(eddy::mpsc::receiver<std::uint64_t> rx0, eddy::mpsc::sender<std::uint64_t> tx0) {
    auto rx = std::move(rx0);
    auto tx = std::move(tx0);
    while (auto v = co_await rx.recv()) {
        if (!co_await tx.send(*v + 1))
            break;
    }
}

eddy::task<double> ping() {
    auto [ping_tx, ping_rx] = eddy::mpsc::channel<std::uint64_t>(1);
    auto [pong_tx, pong_rx] = eddy::mpsc::channel<std::uint64_t>(1);
    auto h = eddy::spawn(pong(std::move(ping_rx), std::move(pong_tx)));
    std::uint64_t token = 0;
    const auto start = suite::clock::now();
    for (std::uint64_t i = 0; i < round_trips; ++i) {
        if (!co_await ping_tx.send(token))
            throw std::runtime_error("ping_pong: send failed");
        auto v = co_await pong_rx.recv();
        if (!v)
            throw std::runtime_error("ping_pong: channel closed");
        token = *v;
    }
    const double elapsed = suite::elapsed_ns(start);
    if (token != round_trips)
        throw std::runtime_error("ping_pong: lost a token");
    { auto gone = std::move(ping_tx); }
    co_await h;
    co_return elapsed;
}

void ping_pong() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double ns = suite::median_ns([&] { return rt.block_on(ping()); });
    suite::report("eddy", "ping_pong", ns / round_trips, "ns/round_trip");
    suite::report_tokio("ping_pong", "ns/round_trip");
}

const suite::registration reg{"ping_pong", ping_pong};

} // namespace
