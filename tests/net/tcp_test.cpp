#include <eddy/join_set.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/net/split.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/time.hpp>
#include <eddy/timeout.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/io.hpp"
#include "support/net.hpp"
#include "support/runtimes.hpp"

using namespace std::chrono_literals;
using eddy::net::socket_address;
using eddy::net::tcp_listener;
using eddy::net::tcp_stream;
using eddy::test::ensure;
using eddy::test::failed_with;
using eddy::test::must;

namespace {

constexpr std::size_t one_mib = std::size_t{1} << 20;

tcp_listener bind_loopback(int backlog = 1024) {
    return must(tcp_listener::bind(socket_address::ipv4_loopback(0), backlog), "bind");
}

/// Whether SIGPIPE still has its default action (which kills the process): the tests that write
/// to a closed peer only prove MSG_NOSIGNAL if nobody ignores the signal.
bool sigpipe_is_default() {
    struct sigaction sa {};
    ::sigaction(SIGPIPE, nullptr, &sa);
    return sa.sa_handler == SIG_DFL;
}

} // namespace

TEST_CASE("tcp: 1 MiB each way at once, a reader and a writer task per side", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();
        auto [crd, cwr] = std::move(p.client).split();
        auto [srd, swr] = std::move(p.server).split();
        auto client_out = eddy::spawn(eddy::test::send_pattern(std::move(cwr), one_mib, 1));
        auto client_in = eddy::spawn(eddy::test::receive_pattern(std::move(crd), 2));
        auto server_out = eddy::spawn(eddy::test::send_pattern(std::move(swr), one_mib, 2));
        auto server_in = eddy::spawn(eddy::test::receive_pattern(std::move(srd), 1));
        const std::size_t sent_up = co_await client_out;
        const std::size_t sent_down = co_await server_out;
        const std::size_t got_up = co_await server_in;
        const std::size_t got_down = co_await client_in;
        ensure(sent_up == one_mib && sent_down == one_mib, "short send");
        ensure(got_up == one_mib, fmt::format("server read {} bytes", got_up));
        ensure(got_down == one_mib, fmt::format("client read {} bytes", got_down));
    }());
}

TEST_CASE("tcp: half-close, the server reads end of stream and still replies", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    REQUIRE(sigpipe_is_default());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();
        // The server waits in read before the client writes: the end of stream wakes it.
        auto server = eddy::spawn([](tcp_stream s) -> eddy::task<> {
            auto request = co_await eddy::test::read_to_end(s);
            ensure(eddy::test::as_text(request) == "request", "server got the wrong request");
            std::array<std::byte, 16> buf{};
            auto again = co_await s.read(buf);
            ensure(again && *again == 0, "end of stream is not sticky");
            must(co_await s.write_all("reply"), "server write after end of stream");
            must(s.shutdown(SHUT_WR), "server shutdown");
        }(std::move(p.server)));
        co_await eddy::test::settle();
        must(co_await p.client.write_all("req"), "client write");
        co_await eddy::test::settle();
        must(co_await p.client.write_all("uest"), "client write");
        must(p.client.shutdown(SHUT_WR), "client shutdown");
        // Writing after shutting the direction down fails (EPIPE), without SIGPIPE.
        auto late = co_await p.client.write_all("late");
        ensure(failed_with(late, std::errc::broken_pipe),
               "write after shutdown: " + eddy::test::describe(late));
        auto reply = co_await eddy::test::read_to_end(p.client);
        ensure(eddy::test::as_text(reply) == "reply", "client got the wrong reply");
        co_await server;
    }());
}

TEST_CASE("tcp: a request-response exchange makes one recv per message, none to find EAGAIN",
          "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    constexpr std::size_t exchanges = 1000;
    const std::uint64_t before = rt.get_handle().metrics().io_would_block;
    rt.block_on([]() -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();
        auto server = eddy::spawn(eddy::test::echo(std::move(p.server)));
        const std::array<std::byte, 64> request{};
        std::array<std::byte, 4096> reply{};
        for (std::size_t i = 0; i < exchanges; ++i) {
            must(co_await p.client.write_all(request), "write");
            for (std::size_t got = 0; got < request.size();) {
                const std::size_t n = must(co_await p.client.read(reply), "read");
                ensure(n > 0, "end of stream before the reply");
                got += n;
            }
        }
        must(p.client.shutdown(SHUT_WR), "shutdown");
        const std::size_t echoed = co_await server;
        ensure(echoed == exchanges * request.size(), "echoed bytes");
    }());
    // Every read waits for its reply. Tried at once, it would find EAGAIN (a wasted recv) about
    // once per exchange on each side. A read after a short one waits for the next event instead.
    const std::uint64_t would_block = rt.get_handle().metrics().io_would_block - before;
    INFO(would_block << " EAGAINs in " << exchanges << " exchanges");
    if (cfg.backend == eddy::io_backend::io_uring)
        CHECK(would_block == 0); // nothing is tried: every operation is submitted
    else
        CHECK(would_block < exchanges / 20);
}

TEST_CASE("tcp: a peer reset fails reads with ECONNRESET and writes with EPIPE", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    REQUIRE(sigpipe_is_default());
    const bool read_waits = GENERATE(true, false);
    INFO((read_waits ? "read waits when the reset arrives" : "reset before the read"));
    auto rt = cfg.runtime();
    rt.block_on([](bool read_waits) -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();
        auto reader =
            eddy::spawn([](tcp_stream s) -> eddy::task<std::pair<std::error_code, tcp_stream>> {
                std::array<std::byte, 64> buf{};
                auto r = co_await s.read(buf);
                co_return std::pair<std::error_code, tcp_stream>(r ? std::error_code() : r.error(),
                                                                 std::move(s));
            }(std::move(p.client)));
        if (read_waits)
            co_await eddy::test::settle();
        // SO_LINGER {1, 0}: close sends RST instead of FIN.
        const linger lg{1, 0};
        ensure(::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0,
               "SO_LINGER");
        must(p.server.close(), "close");
        auto [read_error, client] = co_await reader;
        ensure(read_error == std::errc::connection_reset,
               "read after reset: " + read_error.message());
        // The reset was reported; writing now is EPIPE (ECONNRESET if it were still pending).
        for (int i = 0; i < 3; ++i) {
            auto w = co_await client.write_all("after the reset");
            ensure(failed_with(w, std::errc::broken_pipe) ||
                       failed_with(w, std::errc::connection_reset),
                   "write after reset: " + eddy::test::describe(w));
        }
        const std::array<std::span<const std::byte>, 2> parts{eddy::test::as_bytes("ab"),
                                                              eddy::test::as_bytes("cd")};
        auto v = co_await client.write_vectored(parts);
        ensure(failed_with(v, std::errc::broken_pipe) ||
                   failed_with(v, std::errc::connection_reset),
               "write_vectored after reset: " + eddy::test::describe(v));
    }(read_waits));
}

TEST_CASE("tcp: writing to a peer that closed ends in EPIPE or ECONNRESET, no SIGPIPE",
          "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    REQUIRE(sigpipe_is_default());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();
        must(p.server.close(), "close");
        // The first writes may still be accepted (the peer answers them with RST).
        const auto block = eddy::test::pattern_bytes(16 * 1024, 3);
        std::error_code error;
        for (int i = 0; i < 1000 && !error; ++i) {
            auto w = co_await p.client.write_all(block);
            if (!w)
                error = w.error();
        }
        ensure(error == std::errc::broken_pipe || error == std::errc::connection_reset,
               "writes to a closed peer ended with: " + error.message());
    }());
}

TEST_CASE("tcp: connecting to a port nobody listens on is ECONNREFUSED", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        // A port that was listened on and then closed.
        socket_address closed_addr;
        {
            auto l = bind_loopback();
            closed_addr = must(l.local_address(), "local_address");
            must(l.close(), "close");
        }
        auto r1 = co_await tcp_stream::connect(closed_addr);
        ensure(failed_with(r1, std::errc::connection_refused),
               "connect to a closed listener: " + eddy::test::describe(r1));

        // A port held by a bound socket that does not listen: nobody else can take it.
        const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ensure(holder >= 0, "socket");
        const auto any = socket_address::ipv4_loopback(0);
        ensure(::bind(holder, any.native(), any.native_size()) == 0, "bind");
        sockaddr_in bound{};
        socklen_t len = sizeof bound;
        ::getsockname(holder, reinterpret_cast<sockaddr*>(&bound), &len);
        const auto held = socket_address::ipv4_loopback(ntohs(bound.sin_port));
        auto r2 = co_await tcp_stream::connect(held);
        auto r3 = co_await tcp_stream::connect(held, 5s);
        auto r4 = co_await tcp_stream::connect(fmt::format("127.0.0.1:{}", held.port()));
        ::close(holder);
        ensure(failed_with(r2, std::errc::connection_refused),
               "connect to a bound port: " + eddy::test::describe(r2));
        ensure(failed_with(r3, std::errc::connection_refused),
               "connect with a limit: " + eddy::test::describe(r3));
        ensure(failed_with(r4, std::errc::connection_refused),
               "connect by name: " + eddy::test::describe(r4));
    }());
}

TEST_CASE("tcp: a read or write that times out loses nothing", "[net][tcp][timeout]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();

        // Reads: nothing arrives, so each attempt times out; then the data sent comes in full.
        std::array<std::byte, 256> buf{};
        for (int i = 0; i < 5; ++i) {
            auto r = co_await eddy::timeout(2ms, p.client.read(buf));
            ensure(failed_with(r, eddy::errc::timed_out), "read did not time out");
            ensure(r.error() == std::errc::timed_out, "timed_out is not std::errc::timed_out");
        }
        const auto sent = eddy::test::pattern_bytes(3000, 11);
        must(co_await p.server.write_all(sent), "write");
        std::vector<std::byte> got(sent.size());
        must(co_await p.client.read_exact(got), "read_exact after the timeouts");
        ensure(got == sent, "data after timed-out reads differs");

        // A read that waits wins against a generous limit when data comes.
        auto late_writer = eddy::spawn([](tcp_stream* s) -> eddy::task<> {
            co_await eddy::sleep(2ms);
            must(co_await s->write_all("late"), "late write");
        }(&p.server));
        auto in_time = co_await eddy::timeout(5s, p.client.read(buf));
        ensure(in_time.has_value() && in_time->has_value() && **in_time > 0,
               "a read within its limit failed");
        const std::size_t first = **in_time;
        co_await late_writer;
        if (first < 4)
            must(co_await p.client.read_exact(std::span<std::byte>(buf.data() + first, 4 - first)),
                 "rest of late");
        ensure(eddy::test::as_text(std::span<const std::byte>(buf.data(), 4)) == "late",
               "wrong late data");

        // Writes: with small buffers and a peer that does not read, the send buffer fills and a
        // write times out. Every byte reported written arrives, and nothing else.
        const int small = 16 * 1024;
        ::setsockopt(p.client.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        ::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        std::vector<std::byte> chunk(64 * 1024);
        std::size_t written = 0;
        bool timed_out = false;
        for (int i = 0; i < 10'000 && !timed_out; ++i) {
            eddy::test::fill_pattern(chunk, written, 12);
            auto w = co_await eddy::timeout(3ms, p.client.write(chunk));
            if (!w) {
                ensure(w.error() == eddy::errc::timed_out, "write: " + w.error().message());
                timed_out = true;
            } else {
                written += must(std::move(*w), "write");
            }
        }
        ensure(timed_out, "the send buffer never filled");
        auto reader = eddy::spawn([](tcp_stream* s, std::size_t n) -> eddy::task<> {
            std::vector<std::byte> in(n);
            must(co_await s->read_exact(in), "read what was written");
            ensure(eddy::test::matches_pattern(in, 0, 12), "written bytes differ");
        }(&p.server, written));
        co_await reader;
        // The stream still works, and the timed-out write sent nothing.
        eddy::test::fill_pattern(std::span<std::byte>(chunk.data(), 100), written, 12);
        must(co_await p.client.write_all(std::span<const std::byte>(chunk.data(), 100)),
             "write after the timeout");
        must(p.client.shutdown(SHUT_WR), "shutdown");
        auto rest = co_await eddy::test::read_to_end(p.server);
        ensure(rest.size() == 100, fmt::format("{} bytes after the timed-out write", rest.size()));
        ensure(eddy::test::matches_pattern(rest, written, 12), "bytes after the timeout differ");
    }());
}

TEST_CASE("tcp: readable/writable with try_read/try_write, holding no buffer while waiting",
          "[net][tcp][ready]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto p = co_await eddy::test::connected_tcp_pair();
        std::array<std::byte, 64> buf{};

        // Nothing to read: would block, and readable() waits (a limit expires, nothing lost).
        auto none = p.client.try_read(buf);
        ensure(failed_with(none, std::errc::operation_would_block), "try_read on an empty socket");
        for (int i = 0; i < 3; ++i) {
            auto r = co_await eddy::timeout(2ms, p.client.readable());
            ensure(failed_with(r, eddy::errc::timed_out), "readable() without data");
        }

        // Data: readable() returns, try_read takes it, the next try would block again.
        must(co_await p.server.write_all("ping"), "write");
        std::size_t got = 0;
        while (got < 4) {
            must(co_await p.client.readable(), "readable");
            auto n = p.client.try_read(std::span<std::byte>(buf.data() + got, buf.size() - got));
            if (failed_with(n, std::errc::operation_would_block))
                continue; // readiness was stale: wait again
            got += must(std::move(n), "try_read");
        }
        ensure(eddy::test::as_text(std::span<const std::byte>(buf.data(), 4)) == "ping",
               "wrong data");
        ensure(failed_with(p.client.try_read(buf), std::errc::operation_would_block),
               "try_read after draining");
        auto still = co_await eddy::timeout(2ms, p.client.readable());
        ensure(failed_with(still, eddy::errc::timed_out), "readable() after draining");

        // A task waiting in readable() is woken by a later write.
        auto waiter = eddy::spawn([](tcp_stream* s) -> eddy::task<std::size_t> {
            std::array<std::byte, 16> in{};
            for (;;) {
                must(co_await s->readable(), "readable in task");
                auto n = s->try_read(in);
                if (!failed_with(n, std::errc::operation_would_block))
                    co_return must(std::move(n), "try_read in task");
            }
        }(&p.client));
        co_await eddy::sleep(1ms);
        must(co_await p.server.write_all("x"), "write x");
        const std::size_t woke = co_await waiter;
        ensure(woke == 1, "the waiting task read the wrong amount");

        // Writes: try_write fills the send buffer until it would block; writable() then waits
        // until the peer reads. Every byte try_write reported arrives.
        const int small = 16 * 1024;
        ::setsockopt(p.client.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        ::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        std::vector<std::byte> chunk(8 * 1024);
        std::size_t written = 0;
        for (;;) {
            eddy::test::fill_pattern(chunk, written, 21);
            auto w = p.client.try_write(chunk);
            if (failed_with(w, std::errc::operation_would_block))
                break;
            written += must(std::move(w), "try_write");
            ensure(written < 64 * one_mib, "the send buffer never filled");
        }
        auto blocked = co_await eddy::timeout(2ms, p.client.writable());
        ensure(failed_with(blocked, eddy::errc::timed_out), "writable() with a full buffer");
        auto reader = eddy::spawn([](tcp_stream* s, std::size_t n) -> eddy::task<> {
            std::vector<std::byte> in(n);
            must(co_await s->read_exact(in), "read what was written");
            ensure(eddy::test::matches_pattern(in, 0, 21), "written bytes differ");
        }(&p.server, written));
        must(co_await p.client.writable(), "writable once the peer reads");
        co_await reader;

        // End of stream: readable() returns and try_read gives 0; a reset peer makes try_read
        // fail with ECONNRESET.
        must(p.server.shutdown(SHUT_WR), "shutdown");
        must(co_await p.client.readable(), "readable at end of stream");
        std::size_t eof = 1;
        for (int i = 0; i < 1000 && eof != 0; ++i) {
            auto n = p.client.try_read(buf);
            if (failed_with(n, std::errc::operation_would_block)) {
                must(co_await p.client.readable(), "readable");
                continue;
            }
            eof = must(std::move(n), "try_read at end of stream");
        }
        ensure(eof == 0, "no end of stream from try_read");
    }());
}

TEST_CASE("tcp: connect with a limit, and by host name", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto l = bind_loopback();
        const auto addr = must(l.local_address(), "local_address");
        const std::string names[] = {fmt::format("127.0.0.1:{}", addr.port()),
                                     fmt::format("localhost:{}", addr.port())};
        auto a = must(co_await tcp_stream::connect(addr, 5s), "connect with a limit");
        auto first = must(co_await l.accept(), "accept");
        ensure(first.second == must(a.local_address(), "local_address"), "wrong first connection");
        for (const auto& name : names) {
            auto b = must(co_await tcp_stream::connect(name), "connect " + name);
            auto accepted = must(co_await l.accept(), "accept");
            ensure(accepted.second == must(b.local_address(), "local_address"),
                   "accepted a different connection than " + name);
            must(co_await b.write_all("hi"), "write");
            std::array<std::byte, 2> in{};
            must(co_await accepted.first.read_exact(in), "read");
            ensure(eddy::test::as_text(in) == "hi", "wrong data");
        }
        auto bad = co_await tcp_stream::connect(std::string("no-port-here"));
        ensure(!bad, "connect to a name without a port succeeded");
    }());
}

TEST_CASE("tcp: connect gives up after its limit when the accept queue is full",
          "[net][tcp][timeout]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    // With backlog 0 the queue holds one connection; Linux then drops further SYNs (retried
    // after 1 s), so a connect hangs. Connect until one times out: the first ones may complete.
    const bool paused = GENERATE(false, true);
    INFO((paused ? "paused clock" : "real clock"));
    if (paused && cfg.multi)
        return; // the paused clock needs the current-thread flavor
    auto rt = paused ? eddy::runtime::builder::current_thread()
                           .io_backend(cfg.backend)
                           .start_paused(true)
                           .build()
                     : cfg.runtime();
    rt.block_on([](bool paused) -> eddy::task<> {
        auto l = bind_loopback(0);
        const auto addr = must(l.local_address(), "local_address");
        std::vector<tcp_stream> queued;
        const auto limit = paused ? std::chrono::nanoseconds(10s) : std::chrono::nanoseconds(20ms);
        bool timed_out = false;
        for (int i = 0; i < 5 && !timed_out; ++i) {
            const auto start = eddy::clock::now();
            auto r = co_await tcp_stream::connect(addr, limit);
            if (r) {
                queued.push_back(std::move(*r));
                continue;
            }
            ensure(r.error() == eddy::errc::timed_out, "connect: " + r.error().message());
            ensure(eddy::clock::now() - start >= limit, "gave up before the limit");
            timed_out = true;
        }
        ensure(timed_out, "no connect hung with a full accept queue");
        ensure(queued.size() <= 2, fmt::format("{} connects completed", queued.size()));
    }(paused));
}

TEST_CASE("tcp: 1,000 concurrent connections to one accept loop", "[net][tcp][many]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    constexpr std::size_t clients = 1000;
    eddy::test::fd_limit_guard limits;
    if (limits.soft() < 3 * clients)
        limits.raise_to_hard();
    if (limits.hard() < 2 * clients + 100) {
        WARN("RLIMIT_NOFILE hard limit too low for 1,000 connections: skipped");
        return;
    }
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto l = bind_loopback(static_cast<int>(clients) + 24);
        const auto addr = must(l.local_address(), "local_address");
        auto server = eddy::spawn(eddy::test::echo_server(std::move(l), clients));
        eddy::join_set<bool> set;
        for (std::size_t i = 0; i < clients; ++i) {
            set.spawn([](socket_address addr, std::uint32_t id) -> eddy::task<bool> {
                auto s = must(co_await tcp_stream::connect(addr), "connect");
                const auto msg = eddy::test::pattern_bytes(64, id);
                must(co_await s.write_all(msg), "write");
                must(s.shutdown(SHUT_WR), "shutdown");
                auto back = co_await eddy::test::read_to_end(s);
                ensure(back == msg, fmt::format("client {} got a wrong echo", id));
                co_return true;
            }(addr, static_cast<std::uint32_t>(i)));
        }
        std::size_t done = 0;
        while (auto r = co_await set.join_next()) {
            if (r->take()) // rethrows a client's failure
                ++done;
        }
        const std::size_t echoed = co_await server;
        ensure(done == clients, "not every client finished");
        ensure(echoed == clients * 64, fmt::format("server echoed {} bytes", echoed));
    }());
}

TEST_CASE("tcp: split halves in two tasks, 10,000 messages, then reunite", "[net][tcp][split]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        constexpr std::size_t messages = 10'000;
        constexpr std::size_t size = 16;
        auto p = co_await eddy::test::connected_tcp_pair();
        auto echo = eddy::spawn(eddy::test::echo(std::move(p.server)));
        auto [rd, wr] = std::move(p.client).split();
        ensure(rd.is_pair_of(wr), "halves of one split are not a pair");
        auto writer = eddy::spawn([](eddy::net::write_half w) -> eddy::task<eddy::net::write_half> {
            std::array<std::byte, size> msg{};
            for (std::size_t i = 0; i < messages; ++i) {
                eddy::test::fill_pattern(msg, i * size, 21);
                must(co_await w.write_all(msg), "write");
            }
            co_return std::move(w);
        }(std::move(wr)));
        auto reader = eddy::spawn([](eddy::net::read_half r) -> eddy::task<eddy::net::read_half> {
            std::array<std::byte, 1000> buf{};
            std::size_t got = 0;
            while (got < messages * size) {
                const std::size_t want = std::min(buf.size(), messages * size - got);
                auto n = must(co_await r.read(std::span<std::byte>(buf.data(), want)), "read");
                ensure(n > 0, "end of stream before every message came back");
                ensure(
                    eddy::test::matches_pattern(std::span<const std::byte>(buf.data(), n), got, 21),
                    fmt::format("wrong bytes at {}", got));
                got += n;
            }
            co_return std::move(r);
        }(std::move(rd)));
        auto w = co_await writer;
        auto r = co_await reader;
        auto s = tcp_stream::reunite(r, w);
        ensure(s.has_value(), "reunite refused the halves of one split");
        ensure(s->is_open(), "the reunited stream is closed");
        // The reunited stream works both ways, and its writing side was never shut down.
        must(co_await s->write_all("again"), "write after reunite");
        must(s->shutdown(SHUT_WR), "shutdown");
        auto back = co_await eddy::test::read_to_end(*s);
        ensure(eddy::test::as_text(back) == "again", "wrong echo after reunite");
        const std::size_t echoed = co_await echo;
        ensure(echoed == messages * size + 5, fmt::format("echoed {} bytes", echoed));
    }());
}

TEST_CASE("tcp: halves of different streams do not reunite; dropping the write half sends EOF",
          "[net][tcp][split]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto a = co_await eddy::test::connected_tcp_pair();
        auto b = co_await eddy::test::connected_tcp_pair();
        auto [ard, awr] = std::move(a.client).split();
        auto [brd, bwr] = std::move(b.client).split();
        ensure(!ard.is_pair_of(bwr), "halves of two streams look like a pair");
        auto none = tcp_stream::reunite(ard, bwr);
        ensure(!none.has_value(), "reunited halves of two streams");
        // Both halves are untouched: they still work.
        must(co_await bwr.write_all("b"), "write on b");
        std::array<std::byte, 1> one{};
        must(co_await b.server.read_exact(one), "read b");
        must(co_await a.server.write_all("a"), "write to a");
        must(co_await ard.read_exact(one), "read on a");
        ensure(eddy::test::as_text(one) == "a", "wrong byte on a");

        // Dropping a write half shuts writing down while the read half keeps the socket open.
        { auto gone = std::move(awr); }
        auto rest = co_await eddy::test::read_to_end(a.server);
        ensure(rest.empty(), "data after the write half was dropped");
        must(co_await a.server.write_all("still"), "write to the read half's socket");
        std::array<std::byte, 5> in{};
        must(co_await ard.read_exact(in), "read after the write half was dropped");
        ensure(eddy::test::as_text(in) == "still", "wrong data on the read half");
    }());
}

TEST_CASE("tcp: accept gets EMFILE when out of descriptors, then takes the pending connection",
          "[net][tcp][emfile]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto l = bind_loopback();
        const auto addr = must(l.local_address(), "local_address");
        // Everything the test needs is opened before the limit drops: connecting a socket that
        // exists needs no new descriptor.
        const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        const int spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ensure(client >= 0 && spare >= 0, "socket/open");
        std::error_code first_error;
        std::error_code second_error;
        std::optional<std::pair<tcp_stream, socket_address>> taken;
        {
            eddy::test::fd_limit_guard limits;
            // No descriptor below the limit is free: the next one cannot be created.
            limits.set_soft(static_cast<rlim_t>(eddy::test::lowest_free_fd()));
            // The accept waits (nothing is queued yet) and fails when the connection arrives.
            // (The error is wrapped: a result<std::error_code> would be ambiguous.)
            auto waiting =
                eddy::spawn([](tcp_listener* l) -> eddy::task<std::optional<std::error_code>> {
                    auto r = co_await l->accept();
                    co_return r ? std::nullopt : std::optional(r.error());
                }(&l));
            co_await eddy::test::settle();
            const int rc = ::connect(client, addr.native(), addr.native_size());
            ensure(rc == 0 || errno == EINPROGRESS, "connect");
            auto first = co_await eddy::timeout(10s, waiting);
            ensure(first.has_value(), "the waiting accept hung with no descriptor left");
            first_error = first->value_or(std::error_code());
            // The connection is still queued; accepting again fails again, at once.
            auto second = co_await eddy::timeout(10s, l.accept());
            ensure(second.has_value(), "accept hung with no descriptor left");
            second_error = second->has_value() ? std::error_code() : second->error();
            // Free one descriptor: the next accept takes the pending connection.
            ::close(spare);
            auto third = co_await eddy::timeout(10s, l.accept());
            ensure(third.has_value(), "accept hung after a descriptor was freed");
            taken.emplace(must(std::move(*third), "accept after a descriptor was freed"));
        }
        ensure(first_error == std::errc::too_many_files_open,
               "waiting accept: " + first_error.message());
        ensure(second_error == std::errc::too_many_files_open,
               "second accept: " + second_error.message());
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        ::getsockname(client, reinterpret_cast<sockaddr*>(&local), &len);
        const auto client_addr =
            must(socket_address::from_native(reinterpret_cast<sockaddr*>(&local), len), "addr");
        ensure(taken->second == client_addr, "accepted another connection than the pending one");
        ensure(::send(client, "x", 1, MSG_NOSIGNAL) == 1, "client send");
        std::array<std::byte, 1> in{};
        must(co_await taken->first.read_exact(in), "read on the accepted stream");
        ::close(client);
        auto rest = co_await eddy::test::read_to_end(taken->first);
        ensure(rest.empty(), "unexpected data");
    }());
}

TEST_CASE("tcp: addresses and socket options", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto l = bind_loopback();
        const auto addr = must(l.local_address(), "local_address");
        ensure(addr.is_ipv4() && addr.is_loopback() && addr.port() != 0, "listener address");
        auto c = must(co_await tcp_stream::connect(addr), "connect");
        auto [s, peer] = must(co_await l.accept(), "accept");
        ensure(must(c.peer_address(), "peer_address") == addr, "client's peer is not the listener");
        ensure(must(c.local_address(), "local_address") == peer, "accept's peer address");
        ensure(must(s.peer_address(), "peer_address") == peer, "server's peer address");
        ensure(must(s.local_address(), "local_address") == addr, "server's local address");
        auto [rd, wr] = std::move(c).split();
        ensure(must(rd.peer_address(), "peer") == addr && must(wr.peer_address(), "peer") == addr,
               "halves' peer address");
        ensure(must(rd.local_address(), "local") == peer && must(wr.local_address(), "l") == peer,
               "halves' local address");

        ensure(!must(s.nodelay(), "nodelay"), "nodelay is on by default");
        must(s.set_nodelay(true), "set_nodelay");
        ensure(must(s.nodelay(), "nodelay"), "nodelay did not turn on");
        must(s.set_nodelay(false), "set_nodelay");
        ensure(!must(s.nodelay(), "nodelay"), "nodelay did not turn off");

        ensure(!must(s.keepalive(), "keepalive"), "keepalive is on by default");
        must(s.set_keepalive(true, std::chrono::seconds(42)), "set_keepalive");
        ensure(must(s.keepalive(), "keepalive"), "keepalive did not turn on");
        int idle = 0;
        socklen_t len = sizeof idle;
        ::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len);
        ensure(idle == 42, fmt::format("TCP_KEEPIDLE is {}", idle));
        must(s.set_keepalive(false), "set_keepalive");
        ensure(!must(s.keepalive(), "keepalive"), "keepalive did not turn off");

        must(s.set_ttl(17), "set_ttl");
        int ttl = 0;
        len = sizeof ttl;
        ::getsockopt(s.native_handle(), IPPROTO_IP, IP_TTL, &ttl, &len);
        ensure(ttl == 17, "IP_TTL");
        ensure(failed_with(s.set_ttl(1000), std::errc::invalid_argument), "ttl 1000 accepted");
        must(l.set_ttl(33), "listener set_ttl");

        // Peek leaves the bytes for the next read.
        must(co_await wr.write_all("peek"), "write");
        std::array<std::byte, 4> buf{};
        std::size_t peeked = 0;
        while (peeked < 4)
            peeked = must(co_await s.peek(buf), "peek");
        ensure(eddy::test::as_text(buf) == "peek", "peek");
        buf = {};
        must(co_await s.read_exact(buf), "read after peek");
        ensure(eddy::test::as_text(buf) == "peek", "read after peek");

        // Vectored writes gather the buffers in order.
        const std::array<std::span<const std::byte>, 3> parts{eddy::test::as_bytes("one "),
                                                              eddy::test::as_bytes("two "),
                                                              eddy::test::as_bytes("three")};
        std::size_t sent = must(co_await wr.write_vectored(parts), "write_vectored");
        ensure(sent == 13, "write_vectored sent part of 13 bytes");
        std::array<std::byte, 13> gathered{};
        must(co_await s.read_exact(gathered), "read gathered");
        ensure(eddy::test::as_text(gathered) == "one two three", "gathered bytes");

        // read_exact reports a stream that ends early.
        must(co_await wr.write_all("abc"), "write");
        must(wr.shutdown_write(), "shutdown_write");
        std::array<std::byte, 10> ten{};
        auto short_read = co_await s.read_exact(ten);
        ensure(failed_with(short_read, eddy::errc::unexpected_eof),
               "read_exact at end of stream: " + eddy::test::describe(short_read));
    }());
}

TEST_CASE("tcp: IPv6 loopback echo", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const bool ran = rt.block_on([]() -> eddy::task<bool> {
        auto l = tcp_listener::bind(socket_address::ipv6_loopback(0));
        if (!l)
            co_return false; // no IPv6 here
        const auto addr = must(l->local_address(), "local_address");
        ensure(addr.is_ipv6(), "not an IPv6 address");
        auto server = eddy::spawn(eddy::test::echo_server(std::move(*l), 1));
        auto c = must(co_await tcp_stream::connect(fmt::format("[::1]:{}", addr.port())),
                      "connect [::1]");
        const auto msg = eddy::test::pattern_bytes(5000, 6);
        must(co_await c.write_all(msg), "write");
        must(c.shutdown(SHUT_WR), "shutdown");
        auto back = co_await eddy::test::read_to_end(c);
        ensure(back == msg, "wrong echo");
        const std::size_t echoed = co_await server;
        ensure(echoed == msg.size(), "server echoed a different count");
        co_return true;
    }());
    if (!ran)
        WARN("IPv6 loopback unavailable: skipped");
}

TEST_CASE("tcp: operations on closed or empty sockets fail with EBADF", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        const auto badf = std::errc::bad_file_descriptor;
        auto p = co_await eddy::test::connected_tcp_pair();
        must(p.client.close(), "close");
        must(p.client.close(), "second close");
        tcp_stream empty;
        for (tcp_stream* s : {&p.client, &empty}) {
            ensure(!s->is_open() && s->native_handle() < 0, "a closed stream looks open");
            std::array<std::byte, 8> buf{};
            auto r = co_await s->read(buf);
            ensure(failed_with(r, badf), "read: " + eddy::test::describe(r));
            auto re = co_await s->read_exact(buf);
            ensure(failed_with(re, badf), "read_exact: " + eddy::test::describe(re));
            auto pk = co_await s->peek(buf);
            ensure(failed_with(pk, badf), "peek: " + eddy::test::describe(pk));
            auto w = co_await s->write(buf);
            ensure(failed_with(w, badf), "write: " + eddy::test::describe(w));
            auto wa = co_await s->write_all("x");
            ensure(failed_with(wa, badf), "write_all: " + eddy::test::describe(wa));
            const std::array<std::span<const std::byte>, 1> parts{eddy::test::as_bytes("x")};
            auto wv = co_await s->write_vectored(parts);
            ensure(failed_with(wv, badf), "write_vectored: " + eddy::test::describe(wv));
            ensure(failed_with(s->shutdown(SHUT_WR), badf), "shutdown");
            ensure(failed_with(s->local_address(), badf), "local_address");
            ensure(failed_with(s->peer_address(), badf), "peer_address");
            ensure(failed_with(s->set_nodelay(true), badf), "set_nodelay");
            ensure(failed_with(s->nodelay(), badf), "nodelay");
            ensure(failed_with(s->set_keepalive(true), badf), "set_keepalive");
            ensure(failed_with(s->keepalive(), badf), "keepalive");
        }
        // The peer of the closed stream sees end of stream.
        auto rest = co_await eddy::test::read_to_end(p.server);
        ensure(rest.empty(), "data from a closed stream");

        tcp_listener none;
        auto a = co_await none.accept();
        ensure(failed_with(a, badf), "accept on an empty listener: " + eddy::test::describe(a));
        auto l = bind_loopback();
        must(l.close(), "close listener");
        auto a2 = co_await l.accept();
        ensure(failed_with(a2, badf), "accept on a closed listener: " + eddy::test::describe(a2));
        ensure(failed_with(l.local_address(), badf), "listener local_address");

        auto unspecified = co_await tcp_stream::connect(socket_address());
        ensure(failed_with(unspecified, std::errc::invalid_argument),
               "connect to an unspecified address: " + eddy::test::describe(unspecified));
        auto unix_addr = must(socket_address::unix_path("@eddy-not-tcp"), "unix_path");
        ensure(failed_with(tcp_listener::bind(unix_addr), std::errc::address_family_not_supported),
               "tcp bind to a unix address");
    }());
}

TEST_CASE("tcp: sockets that outlive their runtime fail with errc::shutdown", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    std::optional<eddy::test::tcp_pair> pair;
    std::optional<tcp_listener> listener;
    {
        auto rt = cfg.runtime();
        rt.block_on([](std::optional<eddy::test::tcp_pair>* pair,
                       std::optional<tcp_listener>* listener) -> eddy::task<> {
            pair->emplace(co_await eddy::test::connected_tcp_pair());
            listener->emplace(bind_loopback());
            // Registered with the driver (epoll registers on the first wait).
            std::array<std::byte, 4> buf{};
            auto t = co_await eddy::timeout(1ms, (*pair)->server.read(buf));
            ensure(!t, "read returned data from nowhere");
        }(&pair, &listener));
    }
    auto other = cfg.runtime();
    other.block_on([](eddy::test::tcp_pair* p, tcp_listener* l) -> eddy::task<> {
        const auto shut = eddy::errc::shutdown;
        std::array<std::byte, 8> buf{};
        auto r = co_await p->client.read(buf);
        ensure(failed_with(r, shut), "read: " + eddy::test::describe(r));
        auto re = co_await p->server.read_exact(buf);
        ensure(failed_with(re, shut), "read_exact: " + eddy::test::describe(re));
        auto w = co_await p->server.write_all("x");
        ensure(failed_with(w, shut), "write_all: " + eddy::test::describe(w));
        auto a = co_await l->accept();
        ensure(failed_with(a, shut), "accept: " + eddy::test::describe(a));
        // What does not go through the driver still works.
        ensure(must(p->client.local_address(), "local") == must(p->server.peer_address(), "peer"),
               "addresses");
        must(p->client.set_nodelay(true), "set_nodelay");
    }(&*pair, &*listener));
    // Closing them needs no runtime.
    must(pair->client.close(), "close");
    pair.reset();
    listener.reset();
}
