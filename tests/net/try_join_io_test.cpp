// try_join cancelling siblings that wait in the kernel: one branch blocked in a TCP receive on a
// connected socket whose peer stays silent, one blocked in accept, and one that fails with an
// error after a short sleep. On every backend and flavor: try_join returns that error promptly,
// both I/O branches' frames are destroyed (their buffers with them), and the socket and the
// listener work afterwards (data written after the cancellation arrives whole; a connection made
// after it is accepted). Repeated, to shake out races between the cancel and the kernel. Run it
// under AddressSanitizer too.

#include <eddy/clock.hpp>
#include <eddy/join.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/result.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <utility>

#include "support/io.hpp"
#include "support/manual_event.hpp"
#include "support/net.hpp"
#include "support/throws.hpp"

using namespace std::chrono_literals;
using eddy::net::socket_address;
using eddy::net::tcp_listener;
using eddy::net::tcp_stream;
using eddy::test::drop_counter;
using eddy::test::ensure;
using eddy::test::must;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int repetitions = 100;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int repetitions = 100;
#else
constexpr int repetitions = 300;
#endif
#else
constexpr int repetitions = 300;
#endif

/// Waits for data that never comes, into a buffer in its frame.
eddy::task<eddy::result<std::size_t>> silent_recv(tcp_stream* s, drop_counter c) {
    const drop_counter held = std::move(c);
    std::array<std::byte, 512> buf{};
    co_return co_await s->read(buf);
}

/// Waits for a connection that never comes.
eddy::task<eddy::result<std::pair<tcp_stream, socket_address>>> silent_accept(tcp_listener* l,
                                                                              drop_counter c) {
    const drop_counter held = std::move(c);
    co_return co_await l->accept();
}

/// Fails after a yield (rep % 4 == 0: the I/O may not have reached the kernel yet) or a 1 ms
/// sleep (it has).
eddy::task<eddy::result<void>> fails_soon(int rep) {
    if (rep % 4 == 0) {
        co_await eddy::yield_now();
    } else {
        co_await eddy::sleep(1ms);
    }
    co_return eddy::errc::closed;
}

eddy::task<> throws_soon(int rep) {
    static_cast<void>(co_await fails_soon(rep));
    throw std::runtime_error("branch failed");
}

} // namespace

TEST_CASE("try_join cancels siblings blocked in recv and accept, on every backend", "[join][io]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    const bool by_exception = GENERATE(false, true);
    INFO(cfg.name() << (by_exception ? ", failing by exception" : ", failing by error result"));
    auto rt = cfg.runtime();
    rt.block_on([](bool by_exception) -> eddy::task<> {
        const std::size_t fds_before = eddy::test::open_fd_count();
        {
            auto pair = co_await eddy::test::connected_tcp_pair();
            auto listener =
                must(tcp_listener::bind(socket_address::ipv4_loopback(0)), "bind listener");
            const socket_address addr = must(listener.local_address(), "local_address");
            std::chrono::nanoseconds slowest{0};
            for (int rep = 0; rep < repetitions; ++rep) {
                int drops = 0;
                const eddy::instant start = eddy::clock::now();
                if (by_exception) {
                    const bool threw =
                        co_await eddy::test::throws_as<std::runtime_error>(eddy::try_join(
                            silent_recv(&pair.server, drop_counter(&drops)),
                            silent_accept(&listener, drop_counter(&drops)), throws_soon(rep)));
                    ensure(threw, fmt::format("rep {}: try_join did not rethrow", rep));
                } else {
                    auto r = co_await eddy::try_join(
                        silent_recv(&pair.server, drop_counter(&drops)),
                        silent_accept(&listener, drop_counter(&drops)), fails_soon(rep));
                    ensure(!r.has_value(), fmt::format("rep {}: try_join succeeded", rep));
                    ensure(r.error() == eddy::errc::closed,
                           fmt::format("rep {}: wrong error {}", rep, r.error().message()));
                }
                const auto elapsed = eddy::clock::now() - start;
                slowest = std::max(slowest, std::chrono::nanoseconds(elapsed));
                ensure(drops == 2,
                       fmt::format("rep {}: {} of 2 I/O branches were destroyed", rep, drops));

                // Written after the cancellation: the receive that was cancelled took nothing.
                const auto byte = static_cast<std::byte>(rep & 0xff);
                must(co_await pair.client.write(&byte, 1), "write");
                std::array<std::byte, 8> in{};
                auto got = co_await eddy::timeout(5s, pair.server.read(in));
                ensure(got.has_value(), fmt::format("rep {}: the byte never arrived", rep));
                auto n = must(std::move(*got), "read");
                ensure(n == 1 && in[0] == byte, fmt::format("rep {}: read {} bytes, first {}", rep,
                                                            n, static_cast<int>(in[0])));

                // Made after the cancellation: the accept that was cancelled took nothing.
                auto client = must(co_await tcp_stream::connect(addr), "connect");
                auto accepted = co_await eddy::timeout(5s, listener.accept());
                ensure(accepted.has_value(), fmt::format("rep {}: connection not accepted", rep));
                auto conn = must(std::move(*accepted), "accept");
                ensure(conn.second == must(client.local_address(), "local_address"),
                       fmt::format("rep {}: accepted another connection", rep));
            }
            // Promptly: the cancelled operations did not hold try_join up.
            ensure(slowest < 1s,
                   fmt::format(
                       "slowest try_join took {} ms",
                       std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count()));
        }
        const std::size_t fds_after = eddy::test::open_fd_count();
        ensure(fds_after == fds_before,
               fmt::format("{} descriptors open before, {} after", fds_before, fds_after));
    }(by_exception));
}
