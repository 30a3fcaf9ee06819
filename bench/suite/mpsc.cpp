// mpsc_bounded / mpsc_unbounded: 4 producer tasks each send 250,000 u64 into one channel (bounded:
// capacity 1,024), one consumer task receives all 1,000,000. Multi-thread runtime, 2 workers.
// Figure: ns per message (wall time of the whole exchange / 1,000,000).
// Each is followed by a `tokio` row: the same program with Tokio's mpsc (tokio_program.hpp).

#include <eddy/eddy.hpp>
#include <eddy/sync/mpsc.hpp>

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace {

constexpr std::uint64_t producers = 4;
constexpr std::uint64_t per_producer = 250'000;
constexpr std::uint64_t messages = producers * per_producer;
constexpr std::size_t capacity = 1024;

eddy::task<> produce_bounded(eddy::mpsc::sender<std::uint64_t> tx0) {
    auto tx = std::move(tx0);
    for (std::uint64_t i = 0; i < per_producer; ++i) {
        if (!co_await tx.send(i))
            throw std::runtime_error("mpsc_bounded: send failed");
    }
}

eddy::task<> produce_unbounded(eddy::mpsc::unbounded_sender<std::uint64_t> tx0) {
    auto tx = std::move(tx0);
    for (std::uint64_t i = 0; i < per_producer; ++i) {
        if (!tx.send(i))
            throw std::runtime_error("mpsc_unbounded: send failed");
    }
    co_return;
}

template <class Sender, class Produce>
eddy::task<double> exchange(Sender tx, eddy::mpsc::receiver<std::uint64_t> rx, Produce produce) {
    const auto start = suite::clock::now();
    std::vector<eddy::join_handle<void>> hs;
    for (std::uint64_t p = 0; p < producers; ++p)
        hs.push_back(eddy::spawn(produce(tx.clone())));
    { auto gone = std::move(tx); }
    std::uint64_t received = 0;
    std::uint64_t sum = 0;
    while (auto v = co_await rx.recv()) {
        ++received;
        sum += *v;
    }
    const double elapsed = suite::elapsed_ns(start);
    for (auto& h : hs)
        co_await h;
    if (received != messages || sum != producers * (per_producer * (per_producer - 1) / 2))
        throw std::runtime_error("mpsc: lost messages");
    co_return elapsed;
}

void mpsc_bounded() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double ns = suite::median_ns([&] {
        auto [tx, rx] = eddy::mpsc::channel<std::uint64_t>(capacity);
        return rt.block_on(exchange(std::move(tx), std::move(rx), produce_bounded));
    });
    suite::report("eddy", "mpsc_bounded", ns / messages, "ns/msg");
    suite::report_tokio("mpsc_bounded", "ns/msg");
}

void mpsc_unbounded() {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    const double ns = suite::median_ns([&] {
        auto [tx, rx] = eddy::mpsc::unbounded_channel<std::uint64_t>();
        return rt.block_on(exchange(std::move(tx), std::move(rx), produce_unbounded));
    });
    suite::report("eddy", "mpsc_unbounded", ns / messages, "ns/msg");
    suite::report_tokio("mpsc_unbounded", "ns/msg");
}

const suite::registration reg_bounded{"mpsc_bounded", mpsc_bounded};
const suite::registration reg_unbounded{"mpsc_unbounded", mpsc_unbounded};

} // namespace
