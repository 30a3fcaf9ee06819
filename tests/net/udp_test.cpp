#include <eddy/net/udp.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "support/io.hpp"
#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace {

using eddy::net::socket_address;
using eddy::net::udp_socket;
using namespace std::chrono_literals;

std::string_view text(std::span<const std::byte> buf, std::size_t n) {
    return {reinterpret_cast<const char*>(buf.data()), n};
}

/// A socket bound to `any` (a loopback address with port 0), and the address it got.
std::pair<udp_socket, socket_address> bound(const socket_address& any) {
    auto s = udp_socket::bind(any);
    REQUIRE(s.has_value());
    auto a = s->local_address();
    REQUIRE(a.has_value());
    return {std::move(*s), *a};
}

/// send_to / recv_from both ways between two sockets bound to `any`, then an empty datagram.
eddy::task<> round_trip(socket_address any) {
    auto [a, la] = bound(any);
    auto [b, lb] = bound(any);
    CHECK(la.port() != 0);
    CHECK(la.is_loopback());
    CHECK(la.family() == any.family());

    auto sent = co_await a.send_to("ping", lb);
    REQUIRE(sent.has_value());
    CHECK(*sent == 4);
    std::array<std::byte, 64> buf{};
    auto got = co_await b.recv_from(buf);
    REQUIRE(got.has_value());
    CHECK(text(buf, got->first) == "ping");
    CHECK(got->second == la);

    auto replied = co_await b.send_to("pong!", got->second);
    REQUIRE(replied.has_value());
    auto back = co_await a.recv_from(buf);
    REQUIRE(back.has_value());
    CHECK(text(buf, back->first) == "pong!");
    CHECK(back->second == lb);

    // An empty datagram is a datagram: it is received as 0 bytes.
    auto empty = co_await a.send_to(std::string_view(), lb);
    REQUIRE(empty.has_value());
    CHECK(*empty == 0);
    auto zero = co_await b.recv(buf);
    REQUIRE(zero.has_value());
    CHECK(*zero == 0);
}

/// Receives one datagram on `s` and returns it as text (or the error's message).
eddy::task<std::string> receive_text(udp_socket* s) {
    std::array<std::byte, 64> buf{};
    auto r = co_await s->recv(buf);
    if (!r)
        co_return "error: " + r.error().message();
    co_return std::string(text(buf, *r));
}

/// Sends `seq` as a 4-byte datagram.
eddy::task<bool> send_seq(udp_socket& s, socket_address to, std::uint32_t seq) {
    std::array<std::byte, sizeof seq> bytes{};
    std::memcpy(bytes.data(), &seq, sizeof seq);
    auto r = co_await s.send_to(bytes, to);
    co_return r.has_value();
}

/// Runs the root task `scenario()` on each I/O configuration: {epoll, io_uring} x
/// {current_thread, multi_thread} (a Catch2 GENERATE: the test case runs once per configuration).
template <class Scenario>
void on_each_io_config(Scenario scenario) {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on(scenario());
}

} // namespace

TEST_CASE("udp: send_to and recv_from on 127.0.0.1", "[net][udp]") {
    on_each_io_config([] { return round_trip(socket_address::ipv4_loopback(0)); });
}

TEST_CASE("udp: send_to and recv_from on ::1", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        if (!udp_socket::bind(socket_address::ipv6_loopback(0))) {
            WARN("IPv6 loopback unavailable: skipped");
            co_return;
        }
        co_await round_trip(socket_address::ipv6_loopback(0));
    });
}

TEST_CASE("udp: connected send and recv talk to the peer only", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));
        auto [c, lc] = bound(socket_address::ipv4_loopback(0));
        REQUIRE(a.connect(lb).has_value());
        REQUIRE(b.connect(la.to_string()).has_value()); // the "ip:port" overload
        auto peer = a.peer_address();
        REQUIRE(peer.has_value());
        CHECK(*peer == lb);

        auto s1 = co_await a.send("hello");
        REQUIRE(s1.has_value());
        std::array<std::byte, 64> buf{};
        auto r1 = co_await b.recv(buf);
        REQUIRE(r1.has_value());
        CHECK(text(buf, *r1) == "hello");

        // A datagram from a third socket never reaches the connected `a`.
        auto stray = co_await c.send_to("stranger", la);
        REQUIRE(stray.has_value());
        auto s2 = co_await b.send("world");
        REQUIRE(s2.has_value());
        auto r2 = co_await a.recv(buf);
        REQUIRE(r2.has_value());
        CHECK(text(buf, *r2) == "world");

        // The unconnected socket has no default peer.
        auto unconnected = co_await c.send("x");
        REQUIRE_FALSE(unconnected.has_value());
        CHECK(unconnected.error() == std::errc::destination_address_required);
        auto no_peer = c.peer_address();
        REQUIRE_FALSE(no_peer.has_value());
        CHECK(no_peer.error() == std::errc::not_connected);
    });
}

TEST_CASE("udp: a recv waits for a datagram another task sends later", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));
        auto receiver = eddy::spawn(receive_text(&b));
        co_await eddy::test::settle(8);
        CHECK_FALSE(receiver.is_finished());
        auto sender = eddy::spawn([](udp_socket* s, socket_address to) -> eddy::task<bool> {
            co_await eddy::test::settle();
            auto r = co_await s->send_to("late", to);
            co_return r.has_value();
        }(&a, lb));
        const bool sent = co_await sender;
        CHECK(sent);
        const std::string got = co_await receiver;
        CHECK(got == "late");
    });
}

TEST_CASE("udp: a datagram longer than the buffer is reported as message_size", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));
        std::array<std::byte, 200> big{};
        for (std::size_t i = 0; i < big.size(); ++i)
            big[i] = static_cast<std::byte>(i);
        std::array<std::byte, 16> small{};
        std::array<std::byte, 256> large{};

        // recv: an error, the datagram is consumed, the buffer holds its first bytes.
        auto s1 = co_await a.send_to(big, lb);
        REQUIRE(s1.has_value());
        CHECK(*s1 == 200);
        auto cut = co_await b.recv(small);
        REQUIRE_FALSE(cut.has_value());
        CHECK(cut.error() == std::errc::message_size);
        CHECK(std::memcmp(small.data(), big.data(), small.size()) == 0);
        auto s2 = co_await a.send_to("after", lb);
        REQUIRE(s2.has_value());
        auto next = co_await b.recv(large);
        REQUIRE(next.has_value());
        CHECK(text(large, *next) == "after");

        // recv_from: the same.
        auto s3 = co_await a.send_to(big, lb);
        REQUIRE(s3.has_value());
        auto cut_from = co_await b.recv_from(small);
        REQUIRE_FALSE(cut_from.has_value());
        CHECK(cut_from.error() == std::errc::message_size);

        // peek_from: an error too, but the datagram stays queued for a larger buffer.
        auto s4 = co_await a.send_to(big, lb);
        REQUIRE(s4.has_value());
        auto peeked_cut = co_await b.peek_from(small);
        REQUIRE_FALSE(peeked_cut.has_value());
        CHECK(peeked_cut.error() == std::errc::message_size);
        auto peeked = co_await b.peek_from(large);
        REQUIRE(peeked.has_value());
        CHECK(peeked->first == 200);
        CHECK(peeked->second == la);
        auto whole = co_await b.recv_from(large);
        REQUIRE(whole.has_value());
        CHECK(whole->first == 200);
        CHECK(std::memcmp(large.data(), big.data(), big.size()) == 0);

        // A datagram exactly the buffer's size is not truncated.
        auto s5 = co_await a.send_to(std::span(big).first(16), lb);
        REQUIRE(s5.has_value());
        auto exact = co_await b.recv(small);
        REQUIRE(exact.has_value());
        CHECK(*exact == 16);
    });
}

TEST_CASE("udp: peek leaves the datagram for the next recv", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));
        REQUIRE(b.connect(la).has_value());
        auto s = co_await a.send_to("once", lb);
        REQUIRE(s.has_value());
        std::array<std::byte, 64> buf{};
        auto p1 = co_await b.peek(buf);
        auto p2 = co_await b.peek(buf);
        REQUIRE(p1.has_value());
        REQUIRE(p2.has_value());
        CHECK(*p1 == 4);
        CHECK(*p2 == 4);
        auto r = co_await b.recv(buf);
        REQUIRE(r.has_value());
        CHECK(text(buf, *r) == "once");
        auto none = co_await eddy::timeout(5ms, b.peek(buf));
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error() == eddy::errc::timed_out);
    });
}

TEST_CASE("udp: a connected socket whose peer port is closed gets ECONNREFUSED", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        socket_address dead_address;
        {
            auto [dead, ld] = bound(socket_address::ipv4_loopback(0));
            dead_address = ld;
            REQUIRE(dead.close().has_value());
        }
        REQUIRE(a.connect(dead_address).has_value());
        std::array<std::byte, 64> buf{};

        // Send, then recv: the ICMP "port unreachable" comes back as ECONNREFUSED.
        auto s1 = co_await a.send("anyone?");
        REQUIRE(s1.has_value());
        auto r1 = co_await a.recv(buf);
        REQUIRE_FALSE(r1.has_value());
        CHECK(r1.error() == std::errc::connection_refused);

        // A recv already waiting when the error arrives is woken with it.
        auto waiting = eddy::spawn(receive_text(&a));
        co_await eddy::test::settle(8);
        auto s2 = co_await a.send("anyone now?");
        REQUIRE(s2.has_value());
        const std::string r2 = co_await waiting;
        CHECK(r2 == "error: " + std::error_code(ECONNREFUSED, std::system_category()).message());

        // The error was reported once: the next recv waits (it neither fails again nor spins).
        auto r3 = co_await eddy::timeout(5ms, a.recv(buf));
        REQUIRE_FALSE(r3.has_value());
        CHECK(r3.error() == eddy::errc::timed_out);

        // The socket still works with a live peer.
        auto [live, ll] = bound(socket_address::ipv4_loopback(0));
        REQUIRE(a.connect(ll).has_value());
        auto s4 = co_await live.send_to("alive", la);
        REQUIRE(s4.has_value());
        auto r4 = co_await a.recv(buf);
        REQUIRE(r4.has_value());
        CHECK(text(buf, *r4) == "alive");
    });
}

TEST_CASE("udp: an aborted recv leaves the socket working", "[net][udp][cancel]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));
        for (int round = 0; round < 3; ++round) {
            auto h = eddy::spawn(receive_text(&b));
            co_await eddy::test::settle(8);
            const bool cancelled = co_await eddy::test::abort_and_join(h);
            CHECK(cancelled);
        }
        // Nothing was left registered: a datagram sent now goes to the next recv.
        auto s = co_await a.send_to("after abort", lb);
        REQUIRE(s.has_value());
        const std::string got = co_await receive_text(&b);
        CHECK(got == "after abort");
    });
}

TEST_CASE("udp: a timeout around recv gives timed_out and the socket keeps working", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));
        std::array<std::byte, 64> buf{};
        auto r = co_await eddy::timeout(5ms, b.recv(buf));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == eddy::errc::timed_out);

        auto s = co_await a.send_to("in time", lb);
        REQUIRE(s.has_value());
        auto r2 = co_await eddy::timeout(5s, b.recv_from(buf));
        REQUIRE(r2.has_value());
        REQUIRE(r2->has_value());
        CHECK(text(buf, (*r2)->first) == "in time");
        CHECK((*r2)->second == la);
    });
}

TEST_CASE("udp: 1000 datagrams to two concurrent receivers arrive exactly once", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        constexpr std::uint32_t count = 1000;
        constexpr std::uint32_t window = 32; // unacknowledged datagrams: far below SO_RCVBUF
        constexpr std::uint32_t stop = 0xffffffffU;
        auto [a, la] = bound(socket_address::ipv4_loopback(0));
        auto [b, lb] = bound(socket_address::ipv4_loopback(0));

        // Each receiver acknowledges every datagram to its sender and stops at `stop`.
        auto receiver = [](udp_socket* s) -> eddy::task<std::vector<std::uint32_t>> {
            std::vector<std::uint32_t> seen;
            std::array<std::byte, 16> buf{};
            for (;;) {
                auto r = co_await s->recv_from(buf);
                if (!r || r->first != sizeof(std::uint32_t))
                    throw std::runtime_error("receiver: bad datagram");
                std::uint32_t seq = 0;
                std::memcpy(&seq, buf.data(), sizeof seq);
                if (seq == stop)
                    co_return seen;
                seen.push_back(seq);
                auto ack = co_await s->send_to("ack", r->second);
                if (!ack)
                    throw std::runtime_error("receiver: ack failed");
            }
        };
        auto r1 = eddy::spawn(receiver(&b));
        auto r2 = eddy::spawn(receiver(&b));

        std::array<std::byte, 16> ack{};
        for (std::uint32_t i = 0; i < count; ++i) {
            if (i >= window) {
                auto got = co_await a.recv(ack);
                REQUIRE(got.has_value());
            }
            const bool sent = co_await send_seq(a, lb, i);
            REQUIRE(sent);
        }
        for (std::uint32_t i = 0; i < window; ++i) {
            auto got = co_await a.recv(ack);
            REQUIRE(got.has_value());
        }
        for (int i = 0; i < 2; ++i) {
            const bool sent = co_await send_seq(a, lb, stop);
            REQUIRE(sent);
        }
        const auto seen1 = co_await r1;
        const auto seen2 = co_await r2;
        std::vector<int> times(count, 0);
        for (const auto* seen : {&seen1, &seen2}) {
            for (std::uint32_t seq : *seen) {
                REQUIRE(seq < count);
                ++times[seq];
            }
        }
        CHECK(seen1.size() + seen2.size() == count);
        CHECK(std::count(times.begin(), times.end(), 1) == static_cast<long>(count));
        // Nothing else is queued.
        auto extra = co_await eddy::timeout(5ms, b.recv(ack));
        REQUIRE_FALSE(extra.has_value());
        CHECK(extra.error() == eddy::errc::timed_out);
    });
}

TEST_CASE("udp: options, address errors and a closed socket", "[net][udp]") {
    on_each_io_config([]() -> eddy::task<> {
        auto s = udp_socket::bind("127.0.0.1:0");
        REQUIRE(s.has_value());
        CHECK(s->native_handle() >= 0);
        CHECK(s->is_open());

        auto b0 = s->broadcast();
        REQUIRE(b0.has_value());
        CHECK_FALSE(*b0);
        REQUIRE(s->set_broadcast(true).has_value());
        auto b1 = s->broadcast();
        REQUIRE(b1.has_value());
        CHECK(*b1);

        REQUIRE(s->set_ttl(42).has_value());
        auto ttl = s->ttl();
        REQUIRE(ttl.has_value());
        CHECK(*ttl == 42);
        auto bad_ttl = s->set_ttl(0);
        REQUIRE_FALSE(bad_ttl.has_value());
        CHECK(bad_ttl.error() == std::errc::invalid_argument);
        if (auto v6 = udp_socket::bind(socket_address::ipv6_loopback(0))) {
            REQUIRE(v6->set_ttl(7).has_value());
            auto hops = v6->ttl();
            REQUIRE(hops.has_value());
            CHECK(*hops == 7);
        }

        auto not_ip = udp_socket::bind(socket_address::unix_path("@eddy-udp-not-ip").value());
        REQUIRE_FALSE(not_ip.has_value());
        CHECK(not_ip.error() == std::errc::address_family_not_supported);
        auto not_text = udp_socket::bind("localhost:80");
        REQUIRE_FALSE(not_text.has_value());
        CHECK(not_text.error() == std::errc::invalid_argument);
        auto no_target = co_await s->send_to("x", socket_address());
        REQUIRE_FALSE(no_target.has_value());
        CHECK(no_target.error() == std::errc::destination_address_required);

        // A datagram larger than UDP allows.
        std::vector<std::byte> huge(70000);
        auto too_big = co_await s->send_to(huge, socket_address::ipv4_loopback(9));
        REQUIRE_FALSE(too_big.has_value());
        CHECK(too_big.error() == std::errc::message_size);

        REQUIRE(s->close().has_value());
        REQUIRE(s->close().has_value()); // closing twice is harmless
        CHECK_FALSE(s->is_open());
        std::array<std::byte, 8> buf{};
        auto closed = co_await s->recv(buf);
        REQUIRE_FALSE(closed.has_value());
        CHECK(closed.error() == std::errc::bad_file_descriptor);
        udp_socket never_opened;
        auto nothing = co_await never_opened.send_to("x", socket_address::ipv4_loopback(9));
        REQUIRE_FALSE(nothing.has_value());
        CHECK(nothing.error() == std::errc::bad_file_descriptor);
    });
}

TEST_CASE("udp: binding outside a runtime is a logic error", "[net][udp]") {
    CHECK_THROWS_AS(udp_socket::bind(socket_address::ipv4_loopback(0)), std::logic_error);
}
