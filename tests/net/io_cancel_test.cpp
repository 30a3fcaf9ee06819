// Cancelling stream operations while they wait (aborted tasks, lost selects, expired timeouts),
// on both backends: nothing is written into memory that was freed meanwhile, no descriptor
// leaks, and (on epoll) no data is lost. Run these under AddressSanitizer too: a kernel write
// into a freed buffer is invisible to it, so the tests also check that reused memory keeps a
// pattern.

#include <eddy/join_handle.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/net/unix_stream.hpp>
#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "support/io.hpp"
#include "support/manual_event.hpp"
#include "support/net.hpp"
#include "support/runtimes.hpp"
#include "support/throws.hpp"

using namespace std::chrono_literals;
using eddy::net::socket_address;
using eddy::net::tcp_listener;
using eddy::net::tcp_stream;
using eddy::net::unix_stream;
using eddy::test::ensure;
using eddy::test::must;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

/// How many tasks each abort test blocks: fewer under sanitizers, which slow every step.
constexpr std::size_t blocked_tasks = sanitized ? 2'000 : 10'000;

constexpr std::size_t buffer_size = 512;
constexpr std::byte canary_byte{0xA5};

bool all_canary(std::span<const std::byte> b) {
    return std::all_of(b.begin(), b.end(), [](std::byte x) { return x == canary_byte; });
}

/// Raises the descriptor limit for `wanted` descriptors more than are open; returns how many
/// the test may use (possibly fewer than wanted, when the hard limit is low).
std::size_t fds_available(eddy::test::fd_limit_guard& limits, std::size_t wanted) {
    const std::size_t in_use = eddy::test::open_fd_count() + 64;
    if (limits.soft() < in_use + wanted)
        limits.raise_to_hard();
    const std::size_t hard = limits.hard();
    return hard > in_use ? std::min(wanted, hard - in_use) : 0;
}

/// Holds buffers filled with the canary byte, one in its frame and one on the heap (the sizes
/// of the buffers the cancelled operations used, so the allocator hands their memory back),
/// until `go` is set; then reports whether both are intact.
eddy::task<bool> canary(eddy::test::manual_event* go) {
    std::array<std::byte, buffer_size> in_frame{};
    in_frame.fill(canary_byte);
    std::vector<std::byte> on_heap(buffer_size, canary_byte);
    co_await go->wait();
    co_return all_canary(in_frame) && all_canary(on_heap);
}

/// Reuses the memory the cancelled tasks freed (canary tasks and plain heap buffers), runs
/// `provoke` (which makes the kernel complete whatever a leftover operation would complete),
/// gives the kernel a moment, and checks that the canaries are intact.
template <class Provoke>
eddy::task<> check_reuse(std::size_t n, Provoke provoke) {
    eddy::test::manual_event go;
    std::vector<eddy::join_handle<bool>> canaries;
    canaries.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        canaries.push_back(eddy::spawn(canary(&go)));
    std::vector<std::vector<std::byte>> heap(n, std::vector<std::byte>(buffer_size, canary_byte));
    co_await eddy::test::settle(8);
    co_await provoke();
    for (int i = 0; i < 3; ++i) {
        co_await eddy::sleep(1ms);
        co_await eddy::test::settle(4);
    }
    go.set();
    std::size_t damaged = 0;
    for (auto& c : canaries) {
        if (!co_await c)
            ++damaged;
    }
    for (const auto& v : heap) {
        if (!all_canary(v))
            ++damaged;
    }
    ensure(damaged == 0, fmt::format("{} reused buffers were written after cancellation", damaged));
}

/// Waits until `started` reaches `n`, then lets the scheduler turn so the operations started
/// last reach the kernel (io_uring submits after the task suspends).
eddy::task<> wait_started(const std::atomic<std::size_t>& started, std::size_t n) {
    while (started.load() < n)
        co_await eddy::yield_now();
    co_await eddy::test::settle(8);
    co_await eddy::sleep(1ms);
}

/// Aborts every task and checks that each ended cancelled (none had anything to finish with).
template <class T>
eddy::task<> abort_all(std::vector<eddy::join_handle<T>>& handles) {
    for (auto& h : handles)
        h.abort();
    std::size_t finished = 0;
    for (auto& h : handles) {
        if (!co_await eddy::test::abort_and_join(h))
            ++finished;
    }
    handles.clear();
    ensure(finished == 0,
           fmt::format("{} blocked tasks finished instead of being cancelled", finished));
}

/// Reads into a buffer in its frame or on the heap; counts itself as started first.
eddy::task<std::size_t> blocked_read(unix_stream* s, bool in_frame,
                                     std::atomic<std::size_t>* started) {
    std::array<std::byte, buffer_size> frame_buf{};
    std::vector<std::byte> heap_buf(buffer_size);
    started->fetch_add(1);
    if (in_frame) {
        auto r = co_await s->read(frame_buf);
        co_return r ? *r : 0;
    }
    auto r = co_await s->read(heap_buf);
    co_return r ? *r : 0;
}

} // namespace

TEST_CASE("io cancel: abort tasks blocked in recv, then reuse their memory", "[net][io][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::fd_limit_guard limits;
    const std::size_t n = fds_available(limits, blocked_tasks) & ~std::size_t{1};
    REQUIRE(n >= 100);
    auto rt = cfg.runtime();
    rt.block_on([](std::size_t n) -> eddy::task<> {
        const std::size_t fds_before = eddy::test::open_fd_count();
        {
            // n ends of n/2 pairs: both ends of every pair have a reader waiting.
            std::vector<unix_stream> ends;
            ends.reserve(n);
            for (std::size_t i = 0; i < n / 2; ++i) {
                auto [a, b] = must(unix_stream::pair(), "pair");
                ends.push_back(std::move(a));
                ends.push_back(std::move(b));
            }
            std::atomic<std::size_t> started{0};
            std::vector<eddy::join_handle<std::size_t>> readers;
            readers.reserve(n);
            for (std::size_t i = 0; i < n; ++i)
                readers.push_back(eddy::spawn(blocked_read(&ends[i], i % 2 == 0, &started)));
            co_await wait_started(started, n);
            co_await abort_all(readers);

            // Data arriving now must land nowhere but in the socket buffers.
            co_await check_reuse(n, [&ends]() -> eddy::task<> {
                for (std::size_t i = 0; i < ends.size(); ++i) {
                    const auto byte = static_cast<std::byte>(i & 0xffU);
                    must(co_await ends[i].write(&byte, 1), "write");
                }
            });

            // The cancelled reads took nothing: each end holds exactly its peer's byte.
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < ends.size(); ++i) {
                std::array<std::byte, 4> in{};
                auto r = co_await eddy::timeout(5s, ends[i].read(in));
                if (!r || !*r || **r != 1 || in[0] != static_cast<std::byte>((i ^ 1U) & 0xffU))
                    ++wrong;
            }
            ensure(wrong == 0, fmt::format("{} sockets lost or changed their byte", wrong));
        }
        const std::size_t fds_after = eddy::test::open_fd_count();
        ensure(fds_after == fds_before,
               fmt::format("{} descriptors open before, {} after", fds_before, fds_after));
    }(n));
}

TEST_CASE("io cancel: abort tasks blocked in accept, then connect to the listeners",
          "[net][io][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    constexpr std::size_t listeners = 100;
    constexpr std::size_t clients_per_listener = 2;
    eddy::test::fd_limit_guard limits;
    const std::size_t fds_needed = listeners * (1 + 2 * clients_per_listener);
    REQUIRE(fds_available(limits, fds_needed) == fds_needed);
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        const std::size_t n = blocked_tasks;
        const std::size_t fds_before = eddy::test::open_fd_count();
        {
            std::vector<tcp_listener> ls;
            std::vector<socket_address> addrs;
            for (std::size_t i = 0; i < listeners; ++i) {
                ls.push_back(must(tcp_listener::bind(socket_address::ipv4_loopback(0)), "bind"));
                addrs.push_back(must(ls.back().local_address(), "local_address"));
            }
            // Several accepts wait on each listener.
            std::atomic<std::size_t> started{0};
            std::vector<eddy::join_handle<bool>> acceptors;
            acceptors.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                acceptors.push_back(eddy::spawn(
                    [](tcp_listener* l, std::atomic<std::size_t>* started) -> eddy::task<bool> {
                        std::array<std::byte, buffer_size> frame_buf{};
                        frame_buf.fill(std::byte{1});
                        started->fetch_add(1);
                        auto c = co_await l->accept();
                        co_return c.has_value() && frame_buf[0] == std::byte{1};
                    }(&ls[i % listeners], &started)));
            }
            co_await wait_started(started, n);
            co_await abort_all(acceptors);

            // Connections arriving now are queued, not taken by a cancelled accept.
            std::vector<tcp_stream> clients;
            co_await check_reuse(n, [&clients, &addrs]() -> eddy::task<> {
                for (std::size_t k = 0; k < clients_per_listener; ++k) {
                    for (const auto& a : addrs)
                        clients.push_back(must(co_await tcp_stream::connect(a), "connect"));
                }
            });
            std::set<std::pair<std::size_t, std::uint16_t>> expected;
            for (std::size_t i = 0; i < clients.size(); ++i) {
                expected.emplace(i % listeners,
                                 must(clients[i].local_address(), "local_address").port());
            }
            // Every connection is still there to accept, and nothing else.
            std::vector<tcp_stream> accepted;
            for (std::size_t i = 0; i < listeners; ++i) {
                for (std::size_t k = 0; k < clients_per_listener; ++k) {
                    auto r = co_await eddy::timeout(5s, ls[i].accept());
                    ensure(r.has_value(), fmt::format("listener {} lost a connection", i));
                    auto c = must(std::move(*r), "accept");
                    ensure(expected.erase({i, c.second.port()}) == 1,
                           "accepted an unknown connection");
                    accepted.push_back(std::move(c.first));
                }
                auto extra = co_await eddy::timeout(1ms, ls[i].accept());
                ensure(!extra, "accepted more connections than were made");
            }
            ensure(expected.empty(), "connections missing");
            // They work: a byte each way on the first one.
            must(co_await clients.front().write_all("x"), "write");
            std::array<std::byte, 1> in{};
            must(co_await accepted.front().read_exact(in), "read");
        }
        const std::size_t fds_after = eddy::test::open_fd_count();
        ensure(fds_after == fds_before,
               fmt::format("{} descriptors open before, {} after", fds_before, fds_after));
    }());
}

TEST_CASE("io cancel: abort tasks blocked in connect", "[net][io][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::fd_limit_guard limits;
    const std::size_t n = fds_available(limits, blocked_tasks);
    REQUIRE(n >= 100);
    auto rt = cfg.runtime();
    rt.block_on([](std::size_t n) -> eddy::task<> {
        const std::size_t fds_before = eddy::test::open_fd_count();
        {
            // Backlog 0: once one connection is queued (never accepted), Linux drops further
            // SYNs, so connects wait (retrying after 1 s). Fill the queue first.
            auto l = must(tcp_listener::bind(socket_address::ipv4_loopback(0), 0), "bind");
            const auto addr = must(l.local_address(), "local_address");
            std::vector<tcp_stream> queued;
            bool full = false;
            for (int i = 0; i < 5 && !full; ++i) {
                auto r = co_await tcp_stream::connect(addr, 20ms);
                if (r)
                    queued.push_back(std::move(*r));
                else
                    full = r.error() == eddy::errc::timed_out;
            }
            ensure(full, "the accept queue never filled");

            std::atomic<std::size_t> started{0};
            std::vector<eddy::join_handle<bool>> connectors;
            connectors.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                connectors.push_back(eddy::spawn(
                    [](socket_address a, std::atomic<std::size_t>* started) -> eddy::task<bool> {
                        started->fetch_add(1);
                        auto s = co_await tcp_stream::connect(a);
                        co_return s.has_value();
                    }(addr, &started)));
            }
            co_await wait_started(started, n);
            co_await abort_all(connectors);
            co_await check_reuse(n, [&l]() -> eddy::task<> {
                // Make room in the queue: a connect still pending would then complete.
                auto c = co_await eddy::timeout(5s, l.accept());
                ensure(c.has_value() && c->has_value(), "the queued connection is gone");
            });
        }
        const std::size_t fds_after = eddy::test::open_fd_count();
        ensure(fds_after == fds_before,
               fmt::format("{} descriptors open before, {} after", fds_before, fds_after));
    }(n));
}

TEST_CASE("io cancel: shutting the runtime down with tasks in recv, accept and connect",
          "[net][io][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    const std::size_t fds_before = eddy::test::open_fd_count();
    {
        auto rt = cfg.runtime();
        rt.block_on([]() -> eddy::task<> {
            // Every task owns its sockets: the runtime's shutdown destroys them with the frames.
            for (int i = 0; i < 50; ++i) {
                (void)eddy::spawn([]() -> eddy::task<> {
                    auto [a, b] = must(unix_stream::pair(), "pair");
                    std::array<std::byte, 64> buf{};
                    auto r = co_await a.read(buf);
                    (void)r;
                }());
                (void)eddy::spawn([]() -> eddy::task<> {
                    auto l = must(tcp_listener::bind(socket_address::ipv4_loopback(0)), "bind");
                    auto c = co_await l.accept();
                    (void)c;
                }());
            }
            auto l = must(tcp_listener::bind(socket_address::ipv4_loopback(0), 0), "bind");
            const auto addr = must(l.local_address(), "local_address");
            for (int i = 0; i < 50; ++i) {
                (void)eddy::spawn([](socket_address a) -> eddy::task<> {
                    auto s = co_await tcp_stream::connect(a);
                    (void)s;
                }(addr));
            }
            co_await eddy::test::settle(8);
            co_await eddy::sleep(2ms);
        }());
    }
    CHECK(eddy::test::open_fd_count() == fds_before);
}

TEST_CASE("io cancel: reads that lose a select or time out while data arrives",
          "[net][io][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    // How the read is cancelled:
    //  0: it loses a select against yield_now (it was handed to the kernel, data may arrive
    //     meanwhile);
    //  1: it loses a select_biased against a branch that is ready at once (started, cancelled
    //     before the kernel saw it);
    //  2: it times out after 1 ms (a real timer; the writer then writes every millisecond).
    const int kind = GENERATE(0, 1, 2);
    static constexpr std::array<const char*, 3> kind_names{
        "select against yield_now", "select_biased against a ready branch", "timeout of 1 ms"};
    INFO(kind_names[static_cast<std::size_t>(kind)]);
    const std::size_t races = kind == 2 ? 100 : 1000;
    struct outcome {
        std::size_t sent = 0;
        std::size_t received = 0;
        std::size_t lost_races = 0;
        std::size_t gaps = 0;
    };
    auto rt = cfg.runtime();
    const outcome o = rt.block_on([](int kind, std::size_t races) -> eddy::task<outcome> {
        auto p = co_await eddy::test::connected_tcp_pair();
        std::atomic<bool> stop{false};
        // Byte j of the stream is j mod 256: a lost chunk (at most one read's 255 bytes) shows
        // as a jump.
        auto writer = eddy::spawn([](tcp_stream s, bool slow,
                                     std::atomic<bool>* stop) -> eddy::task<std::size_t> {
            std::array<std::byte, 48> piece{};
            std::size_t sent = 0;
            for (std::size_t round = 0; !stop->load(); ++round) {
                const std::size_t n = 1 + (round * 7) % piece.size();
                for (std::size_t i = 0; i < n; ++i)
                    piece[i] = static_cast<std::byte>((sent + i) & 0xffU);
                must(co_await s.write_all(std::span<const std::byte>(piece.data(), n)), "write");
                sent += n;
                if (slow)
                    co_await eddy::sleep(1ms);
                else
                    co_await eddy::yield_now();
            }
            must(s.shutdown(SHUT_WR), "shutdown");
            co_return sent;
        }(std::move(p.client), kind == 2, &stop));

        outcome o;
        std::size_t expected = 0;
        auto take = [&o, &expected](std::span<const std::byte> got) {
            for (std::byte b : got) {
                if (b != static_cast<std::byte>(expected & 0xffU)) {
                    ++o.gaps;
                    expected += (static_cast<std::size_t>(b) - expected) & 0xffU;
                }
                ++expected;
            }
            o.received += got.size();
        };
        std::array<std::byte, 255> buf{};
        for (std::size_t i = 0; o.lost_races < races && i < 1'000'000; ++i) {
            bool lost = false;
            std::size_t n = 0;
            if (kind == 0) {
                auto r = co_await eddy::select(p.server.read(buf), eddy::yield_now());
                lost = r.index() == 1;
                if (!lost)
                    n = must(std::move(std::get<0>(r)), "read");
            } else if (kind == 1) {
                auto r = co_await eddy::select_biased(p.server.read(buf), std::suspend_never());
                lost = r.index() == 1;
                if (!lost)
                    n = must(std::move(std::get<0>(r)), "read");
                else
                    co_await eddy::yield_now(); // the writer's turn
            } else {
                auto r = co_await eddy::timeout(1ms, p.server.read(buf));
                lost = !r;
                if (!lost)
                    n = must(std::move(*r), "read");
            }
            if (lost)
                ++o.lost_races;
            else
                take(std::span<const std::byte>(buf.data(), n));
        }
        // Drain what is left with plain reads (the writer stops and shuts down).
        stop.store(true);
        for (;;) {
            auto n = must(co_await p.server.read(buf), "read");
            if (n == 0)
                break;
            take(std::span<const std::byte>(buf.data(), n));
        }
        o.sent = co_await writer;
        co_return o;
    }(kind, races));
    const std::string summary = fmt::format(
        "{}, {}: {} reads cancelled; sent {}, received {}, {} gaps", cfg.name(),
        kind_names[static_cast<std::size_t>(kind)], o.lost_races, o.sent, o.received, o.gaps);
    INFO(summary);
    CHECK(o.lost_races >= races);
    if (cfg.backend == eddy::io_backend::epoll || (kind == 1 && !cfg.multi)) {
        // Nothing is lost: a cancelled epoll read moved no data; an io_uring read cancelled
        // before it was submitted never reached the kernel (with one thread, nobody else
        // submits it in between).
        CHECK(o.received == o.sent);
        CHECK(o.gaps == 0);
    } else {
        // io_uring: a receive that completed in the kernel before its cancel, or whose
        // completion was reaped but lost the select, loses its bytes (see
        // eddy/detail/io/ops.hpp). Measured, not asserted.
        CHECK(o.received <= o.sent);
        if (o.received != o.sent)
            WARN(summary);
    }
}
