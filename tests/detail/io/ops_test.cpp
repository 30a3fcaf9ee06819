#include <eddy/join.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/ops.hpp>
#include <eddy/detail/io/source.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "support/io.hpp"
#include "support/net.hpp"
#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace {

using eddy::detail::io_source;
using eddy::test::ensure;

struct pair_of_sources {
    io_source a;
    io_source b;
};

/// A connected AF_UNIX socket pair (`SOCK_STREAM` or `SOCK_DGRAM`) owned by the current runtime.
pair_of_sources make_pair(int type = SOCK_STREAM) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
    auto a = io_source::adopt(fds[0]);
    auto b = io_source::adopt(fds[1]);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    return {std::move(*a), std::move(*b)};
}

/// Receives one datagram from `s`; counts the readers that returned.
eddy::task<std::size_t> receive_one(io_source* s, std::atomic<int>* returned) {
    std::array<char, 16> buf{};
    auto r = co_await eddy::detail::recv(*s, buf.data(), buf.size());
    returned->fetch_add(1);
    co_return r ? *r : 0;
}

} // namespace

TEST_CASE("io ops: send and recv over a socket pair", "[io][ops]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    CHECK(rt.get_handle().metrics().io_backend == cfg.backend);
    const bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto p = make_pair();
        const std::string_view msg = "hello";
        auto sent = co_await eddy::detail::send(p.a, msg.data(), msg.size());
        if (!sent || *sent != msg.size())
            co_return false;
        std::array<char, 16> buf{};
        auto got = co_await eddy::detail::recv(p.b, buf.data(), buf.size());
        co_return got&&* got == msg.size() && std::string_view(buf.data(), *got) == msg;
    }());
    CHECK(ok);
}

TEST_CASE("io ops: a recv waits for data sent later by another task", "[io][ops]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const std::size_t n = rt.block_on([]() -> eddy::task<std::size_t> {
        auto p = make_pair();
        io_source* a = &p.a;
        auto reader = eddy::spawn([](io_source* b) -> eddy::task<std::size_t> {
            std::size_t total = 0;
            std::array<char, 64> buf{};
            for (;;) {
                auto r = co_await eddy::detail::recv(*b, buf.data(), buf.size());
                if (!r || *r == 0)
                    break;
                total += *r;
            }
            co_return total;
        }(&p.b));
        co_await eddy::test::settle();
        for (int i = 0; i < 100; ++i) {
            auto s = co_await eddy::detail::send(*a, "0123456789", 10);
            if (!s)
                co_return 0;
            if (i % 10 == 0)
                co_await eddy::test::settle(1);
        }
        ::shutdown(a->fd(), SHUT_WR);
        co_return co_await reader;
    }());
    CHECK(n == 1000);
}

TEST_CASE("io ops: a reader woken for a datagram another reader took waits again",
          "[io][ops][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const std::uint64_t before = rt.get_handle().metrics().io_would_block;
    rt.block_on([]() -> eddy::task<> {
        auto p = make_pair(SOCK_DGRAM);
        std::atomic<int> returned{0};
        auto first = eddy::spawn(receive_one(&p.b, &returned));
        auto second = eddy::spawn(receive_one(&p.b, &returned));
        co_await eddy::test::settle(8);
        // On epoll one event wakes both: the reader that finds the socket empty must go back to
        // waiting (the wake re-checked before its coroutine resumes), not return.
        auto sent = co_await eddy::detail::send(p.a, "one", 3);
        ensure(sent && *sent == 3, "send one");
        for (int i = 0; i < 5000 && returned.load() == 0; ++i)
            co_await eddy::sleep(std::chrono::milliseconds(1));
        co_await eddy::test::settle(8);
        ensure(returned.load() == 1, "not exactly one reader returned for one datagram");
        sent = co_await eddy::detail::send(p.a, "two", 3);
        ensure(sent && *sent == 3, "send two");
        const std::size_t a = co_await first;
        const std::size_t b = co_await second;
        ensure(a == 3 && b == 3, "each reader gets one datagram");

        // Cancelled while waiting again: the datagram after it is not lost.
        auto third = eddy::spawn(receive_one(&p.b, &returned));
        auto fourth = eddy::spawn(receive_one(&p.b, &returned));
        co_await eddy::test::settle(8);
        sent = co_await eddy::detail::send(p.a, "three", 5);
        ensure(sent && *sent == 5, "send three");
        for (int i = 0; i < 5000 && returned.load() == 2; ++i)
            co_await eddy::sleep(std::chrono::milliseconds(1));
        co_await eddy::test::settle(8);
        ensure(returned.load() == 3, "not exactly one reader returned for the third datagram");
        auto& waiting = third.is_finished() ? fourth : third;
        auto& done = third.is_finished() ? third : fourth;
        ensure(co_await done == 5, "the reader got the third datagram");
        const bool cancelled = co_await eddy::test::abort_and_join(waiting);
        ensure(cancelled, "the waiting reader finished instead of being cancelled");
        sent = co_await eddy::detail::send(p.a, "four", 4);
        ensure(sent && *sent == 4, "send four");
        std::array<char, 16> buf{};
        auto got = co_await eddy::detail::recv(p.b, buf.data(), buf.size());
        ensure(got && *got == 4 && std::string_view(buf.data(), 4) == "four",
               "the datagram after the cancelled reader");
    }());
    // On epoll the reader that lost each race tried its recv and found EAGAIN.
    if (cfg.backend == eddy::io_backend::epoll)
        CHECK(rt.get_handle().metrics().io_would_block - before >= 2);
}

TEST_CASE("io ops: operations joined in one task each wait and complete", "[io][ops]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = make_pair();
        auto q = make_pair();
        auto writer = eddy::spawn([](io_source* a, io_source* c) -> eddy::task<> {
            co_await eddy::test::settle(8);
            auto s = co_await eddy::detail::send(*a, "left", 4);
            ensure(s && *s == 4, "send left");
            co_await eddy::test::settle(8);
            s = co_await eddy::detail::send(*c, "right", 5);
            ensure(s && *s == 5, "send right");
        }(&p.a, &q.a));
        std::array<char, 16> left{};
        std::array<char, 16> right{};
        auto [l, r] = co_await eddy::join(eddy::detail::recv(p.b, left.data(), left.size()),
                                          eddy::detail::recv(q.b, right.data(), right.size()));
        ensure(l && *l == 4 && std::string_view(left.data(), 4) == "left", "left recv");
        ensure(r && *r == 5 && std::string_view(right.data(), 5) == "right", "right recv");
        co_await writer;
    }());
    SUCCEED();
}

TEST_CASE("io ops: operations queued by many tasks go to the kernel in a few system calls",
          "[io][ops][uring]") {
    // One thread: the tasks are polled in a row. On two workers the batches depend on how the
    // tasks arrive: one that steals each task as it is spawned runs it with an empty queue and
    // submits at once, as it should when work trickles in.
    const eddy::test::io_config cfg{eddy::io_backend::io_uring, false};
    INFO(cfg.name());
    auto rt = cfg.runtime();
    constexpr std::uint64_t tasks = 64;
    // The receives that 64 tasks queue, one each, polled in a row: operations and system calls.
    const auto [submitted, calls] =
        rt.block_on([]() -> eddy::task<std::pair<std::uint64_t, std::uint64_t>> {
            const auto before = eddy::runtime::handle::current().metrics();
            std::vector<pair_of_sources> pairs;
            pairs.reserve(tasks); // the tasks point into it
            std::vector<eddy::join_handle<std::size_t>> handles;
            for (std::uint64_t i = 0; i < tasks; ++i) {
                pairs.push_back(make_pair());
                handles.push_back(eddy::spawn([](io_source* s) -> eddy::task<std::size_t> {
                    std::array<char, 16> buf{};
                    auto r = co_await eddy::detail::recv(*s, buf.data(), buf.size());
                    co_return r ? *r : 0;
                }(&pairs.back().b)));
            }
            // Suspended, not yielding: the queue runs dry and the worker submits.
            co_await eddy::sleep(std::chrono::milliseconds(5));
            const auto after = eddy::runtime::handle::current().metrics();
            for (auto& p : pairs) {
                auto s = co_await eddy::detail::send(p.a, "x", 1);
                ensure(s && *s == 1, "send");
            }
            for (auto& h : handles)
                ensure(co_await h == 1, "every recv completes");
            co_return std::pair{after.io_submissions - before.io_submissions,
                                after.io_submit_calls - before.io_submit_calls};
        }());
    INFO(submitted << " operations in " << calls << " system calls");
    CHECK(submitted == tasks);
    // A worker submits when its queue runs dry, or every 16 tasks it polls: 5 calls, not 64.
    CHECK(calls <= tasks / 8);
}

TEST_CASE("io ops: after a short stream send the next one waits for room first", "[io][ops]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        using eddy::detail::socket_kind;
        auto p = make_pair();
        io_source* a = &p.a;
        io_source* b = &p.b;
        // The hint is io_uring's (epoll keeps the same knowledge in the fd's readiness bits).
        const bool hinted = a->completion_based() && a->uring().has_poll_first();

        auto s = co_await eddy::detail::send(*a, "0123456789", 10, 0, socket_kind::stream);
        ensure(s && *s == 10, "a whole send");
        ensure(!a->send_buffer_full(), "a whole send leaves no hint");

        // Fill the send buffer (a short send), then send once more: that one waits for room,
        // which the reader makes 5 ms later.
        int small = 4096;
        ensure(::setsockopt(a->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0,
               "SO_SNDBUF");
        std::vector<char> big(1 << 20, 'y');
        auto first =
            co_await eddy::detail::send(*a, big.data(), big.size(), 0, socket_kind::stream);
        ensure(first && *first > 0 && *first < big.size(), "short send");
        ensure(a->send_buffer_full() == hinted, "short send recorded");
        const std::size_t want = 10 + *first + 1;
        auto drain = eddy::spawn([](io_source* b, std::size_t want) -> eddy::task<std::size_t> {
            co_await eddy::sleep(std::chrono::milliseconds(5));
            std::vector<char> sink(64 * 1024);
            std::size_t total = 0;
            while (total < want) {
                auto got = co_await eddy::detail::recv(*b, sink.data(), sink.size(), 0,
                                                       socket_kind::stream);
                ensure(got && *got > 0, "drain");
                total += *got;
            }
            co_return total;
        }(b, want));
        auto second = co_await eddy::detail::send(*a, big.data(), 1, 0, socket_kind::stream);
        ensure(second && *second == 1, "send after waiting for room");
        ensure(!a->send_buffer_full(), "a whole send clears the hint");
        ensure(co_await drain == want, "every byte arrives");
    }());
    SUCCEED();
}

TEST_CASE("io ops: an operation moved before it is awaited, ready or not", "[io][ops]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = make_pair();
        std::array<char, 16> buf{};

        // Data already there: the first attempt completes it.
        auto sent = co_await eddy::detail::send(p.a, "ready", 5);
        ensure(sent && *sent == 5, "send");
        auto op = eddy::detail::recv(p.b, buf.data(), buf.size());
        auto moved = std::move(op);
        auto got = co_await moved;
        ensure(got && *got == 5 && std::string_view(buf.data(), 5) == "ready", "ready recv");

        // Nothing there yet: the moved operation waits, and the data sent later completes it.
        auto later = eddy::detail::recv(p.b, buf.data(), buf.size());
        auto waiting = std::move(later);
        auto writer = eddy::spawn([](io_source* a) -> eddy::task<> {
            co_await eddy::test::settle();
            auto s = co_await eddy::detail::send(*a, "later", 5);
            ensure(s && *s == 5, "late send");
        }(&p.a));
        auto late = co_await waiting;
        ensure(late && *late == 5 && std::string_view(buf.data(), 5) == "later", "late recv");
        co_await writer;
    }());
    SUCCEED();
}

TEST_CASE("io ops: reading an always-ready socket in a loop lets other tasks run",
          "[io][ops][coop]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = make_pair();
        std::vector<char> data(4096, 'z');
        auto sent = co_await eddy::detail::send(p.a, data.data(), data.size());
        ensure(sent && *sent == data.size(), "send");
        std::atomic<bool> ran{false};
        auto other = eddy::spawn([](std::atomic<bool>* flag) -> eddy::task<> {
            flag->store(true);
            co_return;
        }(&ran));
        // One byte at a time: every read completes at once, so only the budget makes it yield.
        bool seen_during = false;
        for (std::size_t i = 0; i < data.size(); ++i) {
            char c = 0;
            auto r = co_await eddy::detail::recv(p.b, &c, 1);
            ensure(r && *r == 1 && c == 'z', "one-byte recv");
            seen_during = seen_during || ran.load();
        }
        ensure(seen_during, "the spawned task never ran while the reader looped");
        co_await other;
    }());
    SUCCEED();
}

TEST_CASE("io ops: aborting tasks blocked in recv leaves nothing behind", "[io][ops][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    constexpr int tasks = 1000;
    rt.block_on([]() -> eddy::task<> {
        std::vector<pair_of_sources> pairs;
        pairs.reserve(tasks); // the tasks point into it
        std::vector<eddy::join_handle<std::size_t>> handles;
        for (int i = 0; i < tasks; ++i) {
            pairs.push_back(make_pair());
            handles.push_back(eddy::spawn([](io_source* s) -> eddy::task<std::size_t> {
                std::vector<char> buf(256); // the kernel writes here on io_uring
                auto r = co_await eddy::detail::recv(*s, buf.data(), buf.size());
                co_return r ? *r : 0;
            }(&pairs.back().b)));
        }
        co_await eddy::test::settle(8);
        for (auto& h : handles) {
            const bool cancelled = co_await eddy::test::abort_and_join(h);
            if (!cancelled)
                throw std::runtime_error("a blocked recv finished instead of being cancelled");
        }
        // The buffers are freed; data arriving now must not land anywhere.
        for (auto& p : pairs) {
            auto s = co_await eddy::detail::send(p.a, "x", 1);
            (void)s;
        }
        std::vector<std::vector<char>> reuse(tasks, std::vector<char>(256, 'y'));
        co_await eddy::test::settle(8);
        for (const auto& v : reuse) {
            for (char c : v) {
                if (c != 'y')
                    throw std::runtime_error("freed buffer written after cancellation");
            }
        }
    }());
    SUCCEED();
}

TEST_CASE("io ops: shutting down the runtime cancels blocked operations", "[io][ops][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    std::vector<pair_of_sources> pairs;
    {
        auto rt = cfg.runtime();
        rt.block_on([&pairs]() -> eddy::task<> {
            pairs.reserve(16);
            for (int i = 0; i < 16; ++i) {
                pairs.push_back(make_pair());
                (void)eddy::spawn([](io_source* s) -> eddy::task<> {
                    std::array<char, 32> buf{};
                    auto r = co_await eddy::detail::recv(*s, buf.data(), buf.size());
                    (void)r;
                }(&pairs.back().b));
            }
            co_await eddy::test::settle(8);
        }());
    }
    // The sockets outlive the runtime: they still close cleanly, and operations fail.
    auto r = eddy::runtime::builder::current_thread().build().block_on(
        [](io_source* s) -> eddy::task<bool> {
            auto sent = co_await eddy::detail::send(*s, "x", 1);
            co_return !sent && sent.error() == eddy::errc::shutdown;
        }(&pairs.front().a));
    CHECK(r);
    pairs.clear();
}

TEST_CASE("io backend: forced io_uring that cannot start fails at build", "[io][backend]") {
    eddy::detail::simulate_io_uring_unavailable.store(true);
    CHECK_THROWS_AS(
        eddy::runtime::builder::current_thread().io_backend(eddy::io_backend::io_uring).build(),
        std::system_error);
    auto rt =
        eddy::runtime::builder::current_thread().io_backend(eddy::io_backend::automatic).build();
    eddy::detail::simulate_io_uring_unavailable.store(false);
    const auto b = rt.get_handle().metrics().io_backend;
    // automatic fell back (unless EDDY_IO_BACKEND forces a backend for the whole run)
    const char* env = std::getenv("EDDY_IO_BACKEND");
    if (env == nullptr || std::string_view(env) == "automatic")
        CHECK(b == eddy::io_backend::epoll);
    auto rt2 = eddy::runtime::builder::current_thread().build();
    CHECK(rt2.get_handle().metrics().io_backend != eddy::io_backend::automatic);
}
