#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/net/unix_listener.hpp>
#include <eddy/net/unix_stream.hpp>
#include <eddy/spawn.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <string_view>

#include "support/io.hpp"

TEST_CASE("tcp: echo one message", "[net][tcp]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto l = eddy::net::tcp_listener::bind(eddy::net::socket_address::ipv4_loopback(0));
        if (!l)
            co_return false;
        auto addr = *l->local_address();
        auto server = eddy::spawn([](eddy::net::tcp_listener* l) -> eddy::task<bool> {
            auto c = co_await l->accept();
            if (!c)
                co_return false;
            std::array<std::byte, 64> buf{};
            for (;;) {
                auto n = co_await c->first.read(buf);
                if (!n)
                    co_return false;
                if (*n == 0)
                    co_return true;
                auto w = co_await c->first.write_all(std::span<const std::byte>(buf.data(), *n));
                if (!w)
                    co_return false;
            }
        }(&*l));
        auto s = co_await eddy::net::tcp_stream::connect(addr);
        if (!s)
            co_return false;
        auto w = co_await s->write_all("hello");
        if (!w)
            co_return false;
        std::array<std::byte, 5> got{};
        auto r = co_await s->read_exact(got);
        if (!r)
            co_return false;
        (void)s->shutdown();
        const bool server_ok = co_await server;
        co_return server_ok&& std::string_view(reinterpret_cast<const char*>(got.data()),
                                               got.size()) == "hello";
    }());
    CHECK(ok);
}
