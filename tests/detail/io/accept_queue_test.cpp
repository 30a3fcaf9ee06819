// The listener's accept path on both backends: on io_uring a multishot accept feeding a queue.

#include <eddy/join_set.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/spawn.hpp>
#include <eddy/timeout.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <vector>

#include "support/io.hpp"
#include "support/runtimes.hpp"

namespace {

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

using eddy::net::socket_address;
using eddy::net::tcp_listener;
using eddy::net::tcp_stream;

} // namespace

TEST_CASE("accept: more connections than the queue holds, accepted by two tasks at once",
          "[io][accept]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    constexpr int clients = 300; // more than accept_queue::max_queued
    const int accepted = rt.block_on([]() -> eddy::task<int> {
        auto l = tcp_listener::bind(socket_address::ipv4_loopback(0), 512);
        if (!l)
            co_return -1;
        const socket_address addr = *l->local_address();
        std::vector<tcp_stream> conns;
        for (int i = 0; i < clients; ++i) {
            auto c = co_await tcp_stream::connect(addr);
            if (!c)
                co_return -2;
            conns.push_back(std::move(*c));
        }
        eddy::join_set<int> acceptors;
        for (int t = 0; t < 2; ++t) {
            acceptors.spawn([](tcp_listener* l) -> eddy::task<int> {
                int n = 0;
                for (;;) {
                    auto c = co_await eddy::timeout(std::chrono::milliseconds(200), l->accept());
                    if (!c || !*c)
                        co_return n;
                    ++n;
                }
            }(&*l));
        }
        int total = 0;
        while (auto r = co_await acceptors.join_next())
            total += r->take();
        co_return total;
    }());
    CHECK(accepted == clients);
}

TEST_CASE("accept: a cancelled accept loses no connection; dropping the listener leaks no fd",
          "[io][accept]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const std::size_t before = open_fds();
    const bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto l = tcp_listener::bind(socket_address::ipv4_loopback(0));
        if (!l)
            co_return false;
        const socket_address addr = *l->local_address();
        // An accept that times out (nothing pending) must not swallow the next connection.
        auto first = co_await eddy::timeout(std::chrono::milliseconds(2), l->accept());
        if (first)
            co_return false;
        auto c = co_await tcp_stream::connect(addr);
        if (!c)
            co_return false;
        auto a = co_await l->accept();
        if (!a)
            co_return false;
        // Connections queued (on io_uring: accepted by the kernel) and never taken.
        std::vector<tcp_stream> pending;
        for (int i = 0; i < 20; ++i) {
            auto p = co_await tcp_stream::connect(addr);
            if (!p)
                co_return false;
            pending.push_back(std::move(*p));
        }
        co_await eddy::test::settle(4);
        co_return true;
    }());
    CHECK(ok);
    CHECK(open_fds() == before);
}
