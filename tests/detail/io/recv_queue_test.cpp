// Stream reads on io_uring through the multishot receive: bytes that arrive while nobody reads,
// peek, try_read, backpressure, a cancelled read's bytes, running out of provided buffers, and
// the one-shot path of a kernel without multishot receive.

#include <eddy/join_set.hpp>
#include <eddy/net/unix_stream.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/timeout.hpp>

#include <eddy/detail/io/recv_queue.hpp>
#include <eddy/detail/io/source.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "support/io.hpp"
#include "support/net.hpp"

namespace {

using namespace std::chrono_literals;
using eddy::net::unix_stream;
using eddy::test::as_bytes;
using eddy::test::as_text;
using eddy::test::ensure;

const eddy::test::io_config uring_configs[] = {
    {eddy::io_backend::io_uring, false},
    {eddy::io_backend::io_uring, true},
};

eddy::detail::uring_driver& current_uring() {
    return static_cast<eddy::detail::uring_driver&>(*eddy::detail::current_io_driver());
}

/// The runtime's driver has multishot receive (not on an old kernel: the test is skipped).
bool multishot_here(eddy::runtime& rt) {
    const bool has =
        rt.block_on([]() -> eddy::task<bool> { co_return current_uring().multishot_recv(); }());
    if (!has)
        WARN("this kernel has no multishot receive: skipped");
    return has;
}

std::pair<unix_stream, unix_stream> stream_pair() {
    auto p = unix_stream::pair();
    ensure(p.has_value(), "socketpair");
    return std::move(*p);
}

/// Sends all of `text` on a plain fd (the peer end, used without the runtime).
void send_raw(int fd, std::string_view text) {
    ensure(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()),
           "send");
}

} // namespace

TEST_CASE("recv queue: bytes that arrive while nobody reads are read, peeked, tried in order",
          "[io][uring][recv_queue]") {
    const auto& cfg = uring_configs[GENERATE(range(0, 2))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    if (!multishot_here(rt))
        return;
    const std::string out = rt.block_on([]() -> eddy::task<std::string> {
        auto [a, b] = stream_pair();
        std::array<std::byte, 8> buf{};
        std::string got;
        // The first read arms the receive and waits.
        auto first = eddy::spawn([](unix_stream* s) -> eddy::task<std::string> {
            std::array<std::byte, 8> buf{};
            auto n = co_await s->read(buf);
            ensure(n && *n > 0, "first read");
            co_return std::string(as_text(std::span(buf).first(*n)));
        }(&a));
        co_await eddy::sleep(5ms);
        send_raw(b.native_handle(), "hi");
        got += co_await first;
        // Three sends while nobody reads: they wait in the queue.
        send_raw(b.native_handle(), "abc");
        send_raw(b.native_handle(), "def");
        send_raw(b.native_handle(), "ghij");
        co_await eddy::sleep(20ms);
        ensure(a.source().existing_receive_queue() != nullptr, "reads go through the queue");
        ensure(a.source().existing_receive_queue()->staged_bytes() == 10, "ten bytes queued");
        auto p = co_await a.peek(std::span(buf).first(2));
        ensure(p && *p == 2, "peek");
        got += "|" + std::string(as_text(std::span(buf).first(2)));
        auto n = co_await a.read(std::span(buf).first(4));
        ensure(n && *n == 4, "read 4");
        got += "|" + std::string(as_text(std::span(buf).first(4)));
        auto t = a.try_read(buf);
        ensure(t && *t == 6, "try_read takes the rest");
        got += "|" + std::string(as_text(std::span(buf).first(6)));
        auto none = a.try_read(buf);
        ensure(!none && none.error() == std::errc::operation_would_block, "then nothing");
        auto idle = co_await eddy::timeout(20ms, a.readable());
        ensure(!idle, "readable waits while nothing comes");
        // The peer closes after one more message: its bytes, then end of stream, twice.
        send_raw(b.native_handle(), "end");
        ensure(b.close().has_value(), "close");
        auto r = co_await a.readable();
        ensure(r.has_value(), "readable");
        n = co_await a.read(buf);
        ensure(n && *n == 3, "last bytes");
        got += "|" + std::string(as_text(std::span(buf).first(3)));
        for (int i = 0; i < 2; ++i) {
            n = co_await a.read(buf);
            ensure(n && *n == 0, "end of stream");
        }
        co_return got;
    }());
    CHECK(out == "hi|ab|abcd|efghij|end");
}

TEST_CASE("recv queue: a read cancelled after its bytes arrived puts them back",
          "[io][uring][recv_queue][cancel]") {
    // One thread, so the reader is filled by the driver and aborted before it runs again.
    const eddy::test::io_config cfg{eddy::io_backend::io_uring, false};
    auto rt = cfg.runtime();
    if (!multishot_here(rt))
        return;
    const std::string out = rt.block_on([]() -> eddy::task<std::string> {
        auto [a, b] = stream_pair();
        auto reader = eddy::spawn([](unix_stream* s) -> eddy::task<std::size_t> {
            std::array<std::byte, 16> buf{};
            auto n = co_await s->read(buf);
            co_return n ? *n : 0;
        }(&a));
        co_await eddy::sleep(5ms); // the reader armed the receive; the worker submitted it
        send_raw(b.native_handle(), "payload");
        // Reap here, without yielding: the completion fills the reader's buffer and wakes it.
        std::size_t reaped = 0;
        for (int i = 0; i < 200 && reaped == 0; ++i) {
            reaped = current_uring().poll();
            if (reaped == 0)
                std::this_thread::sleep_for(1ms);
        }
        ensure(reaped > 0, "the receive completed");
        ensure(a.source().existing_receive_queue()->staged_bytes() == 0,
               "the bytes went to the waiting read");
        reader.abort();
        try {
            (void)co_await reader;
            ensure(false, "the reader was aborted before it ran");
        } catch (const eddy::join_error&) {
        }
        std::array<std::byte, 16> buf{};
        auto n = co_await eddy::timeout(1s, a.read(buf));
        ensure(n && *n, "the bytes are still there");
        co_return std::string(as_text(std::span(buf).first(**n)));
    }());
    CHECK(out == "payload");
}

TEST_CASE("recv queue: a peer that sends more than the queue holds is paused, nothing lost",
          "[io][uring][recv_queue]") {
    const auto& cfg = uring_configs[GENERATE(range(0, 2))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    if (!multishot_here(rt))
        return;
    constexpr std::size_t total = 4 << 20;
    const auto [queued, later] =
        rt.block_on([]() -> eddy::task<std::pair<std::size_t, std::size_t>> {
            auto [a, b] = stream_pair();
            std::array<std::byte, 1> one{};
            auto writer = eddy::spawn(eddy::test::send_pattern(std::move(b), total, 7));
            // Arm the receive with a one-byte read, then read nothing for a while.
            auto n = co_await a.read(one);
            ensure(n && *n == 1, "first byte");
            ensure(eddy::test::matches_pattern(one, 0, 7), "first byte's value");
            co_await eddy::sleep(100ms);
            const eddy::detail::recv_queue& q = *a.source().existing_receive_queue();
            const std::size_t first = q.staged_bytes();
            co_await eddy::sleep(50ms);
            const std::size_t second = q.staged_bytes();
            auto rest = co_await eddy::test::read_to_end(a);
            ensure(rest.size() == total - 1, "every byte arrives");
            ensure(eddy::test::matches_pattern(rest, 1, 7), "in order");
            ensure(co_await writer == total, "the writer sent everything");
            co_return std::pair{first, second};
        }());
    INFO("queued while nobody read: " << queued << ", then " << later);
    // Past max_staged the receive is cancelled; what the kernel posted before the cancel ran
    // still comes in, and then nothing more.
    CHECK(queued > eddy::detail::recv_queue::max_staged);
    CHECK(queued < total / 2);
    CHECK(later == queued);
}

TEST_CASE("recv queue: reads waiting when the ring runs out of buffers are re-armed",
          "[io][uring][recv_queue]") {
    // More waiting reads than a ring has buffers, all sent to before the thread reaps.
    const eddy::test::io_config cfg{eddy::io_backend::io_uring, false};
    auto rt = cfg.runtime();
    if (!multishot_here(rt))
        return;
    constexpr std::size_t readers = eddy::detail::uring_buffers::count + 200;
    const auto [completed, rearms] =
        rt.block_on([]() -> eddy::task<std::pair<std::size_t, std::uint64_t>> {
            std::vector<std::pair<unix_stream, unix_stream>> pairs;
            pairs.reserve(readers); // the tasks point into it
            eddy::join_set<std::size_t> tasks;
            for (std::size_t i = 0; i < readers; ++i) {
                pairs.push_back(stream_pair());
                tasks.spawn([](unix_stream* s) -> eddy::task<std::size_t> {
                    std::array<std::byte, 4> buf{};
                    auto n = co_await s->read(buf);
                    co_return n ? *n : 0;
                }(&pairs.back().first));
            }
            co_await eddy::sleep(10ms); // every read armed and submitted
            const std::uint64_t before = current_uring().multishot_rearms();
            for (auto& p : pairs)
                send_raw(p.second.native_handle(), "x");
            std::size_t done = 0;
            for (;;) {
                auto r = co_await eddy::timeout(5s, tasks.join_next());
                ensure(r.has_value(), "every read completes");
                if (!*r)
                    break;
                done += (*r)->take();
            }
            co_return std::pair{done, current_uring().multishot_rearms() - before};
        }());
    CHECK(completed == readers);
    // Whether the ring ran out depends on when the kernel posted the completions: all at once
    // here, as the thread sent without reaping.
    if (rearms == 0)
        WARN("the ring did not run out of buffers");
}

TEST_CASE("recv queue: without multishot receive, stream reads use one-shot receives",
          "[io][uring][recv_queue]") {
    const auto& base = uring_configs[GENERATE(range(0, 2))];
    INFO(base.name());
    eddy::detail::simulate_no_multishot_recv.store(true);
    auto rt = base.runtime();
    eddy::detail::simulate_no_multishot_recv.store(false);
    const std::string out = rt.block_on([]() -> eddy::task<std::string> {
        ensure(!current_uring().multishot_recv(), "the hook took");
        auto [a, b] = stream_pair();
        send_raw(b.native_handle(), "one");
        std::array<std::byte, 8> buf{};
        auto p = co_await a.peek(buf);
        ensure(p && *p == 3, "peek");
        auto n = co_await a.read(buf);
        ensure(n && *n == 3, "read");
        std::string got(as_text(std::span(buf).first(*n)));
        auto later = eddy::spawn([](unix_stream* s) -> eddy::task<std::string> {
            std::array<std::byte, 8> buf{};
            auto n = co_await s->read_exact(std::span(buf).first(3));
            ensure(n.has_value(), "read_exact");
            co_return std::string(as_text(std::span(buf).first(3)));
        }(&a));
        co_await eddy::sleep(5ms);
        send_raw(b.native_handle(), "two");
        got += co_await later;
        ensure(a.source().existing_receive_queue() == nullptr, "no queue");
        co_return got;
    }());
    CHECK(out == "onetwo");
}
