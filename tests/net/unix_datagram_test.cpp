#include <eddy/net/unix_datagram.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

#include "support/io.hpp"
#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace {

using eddy::net::socket_address;
using eddy::net::unix_datagram;
using namespace std::chrono_literals;

std::string_view text(std::span<const std::byte> buf, std::size_t n) {
    return {reinterpret_cast<const char*>(buf.data()), n};
}

/// A fresh directory under $TMPDIR (or /tmp), removed with the socket files named by `file`.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        path_ = fmt::format("{}/eddy-unix-XXXXXX", base != nullptr ? base : "/tmp");
        if (::mkdtemp(path_.data()) == nullptr)
            throw std::system_error(errno, std::system_category(), "mkdtemp");
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        for (const auto& f : files_)
            ::unlink(f.c_str());
        ::rmdir(path_.c_str());
    }
    /// The path of a file in the directory (removed with it).
    std::string file(std::string_view name) {
        files_.push_back(fmt::format("{}/{}", path_, name));
        return files_.back();
    }

private:
    std::string path_;
    std::vector<std::string> files_;
};

/// "@eddy-test-<pid>-<n>": an abstract name no other test or process uses.
std::string abstract_name() {
    static std::atomic<int> next{0};
    return fmt::format("@eddy-test-{}-{}", ::getpid(), next.fetch_add(1));
}

/// `unix_datagram::pair()`, which must succeed.
std::pair<unix_datagram, unix_datagram> connected_pair() {
    auto p = unix_datagram::pair();
    REQUIRE(p.has_value());
    return std::move(*p);
}

unix_datagram bind_or_fail(std::string_view path) {
    auto s = unix_datagram::bind(path);
    REQUIRE(s.has_value());
    return std::move(*s);
}

/// Receives one datagram on `s` and returns it as text (or the error's message).
eddy::task<std::string> receive_text(unix_datagram* s) {
    std::array<std::byte, 64> buf{};
    auto r = co_await s->recv(buf);
    if (!r)
        co_return "error: " + r.error().message();
    co_return std::string(text(buf, *r));
}

/// From an unbound socket to `path`, and back from a bound one; the addresses are checked.
eddy::task<> exchange_with(std::string path, std::string client_path) {
    auto server = bind_or_fail(path);
    auto local = server.local_address();
    REQUIRE(local.has_value());
    CHECK(local->path() == path);

    // An unbound sender arrives as the unnamed address.
    auto anonymous = unix_datagram::unbound();
    REQUIRE(anonymous.has_value());
    auto s1 = co_await anonymous->send_to("hello", path);
    REQUIRE(s1.has_value());
    CHECK(*s1 == 5);
    std::array<std::byte, 64> buf{};
    auto r1 = co_await server.recv_from(buf);
    REQUIRE(r1.has_value());
    CHECK(text(buf, r1->first) == "hello");
    CHECK(r1->second.is_unnamed());

    // A bound sender arrives with its address, which the server answers.
    auto client = bind_or_fail(client_path);
    auto s2 = co_await client.send_to("who?", *local);
    REQUIRE(s2.has_value());
    auto r2 = co_await server.recv_from(buf);
    REQUIRE(r2.has_value());
    CHECK(r2->second.path() == client_path);
    auto s3 = co_await server.send_to("you", r2->second);
    REQUIRE(s3.has_value());
    auto r3 = co_await client.recv(buf);
    REQUIRE(r3.has_value());
    CHECK(text(buf, *r3) == "you");

    // Connected: send and recv, and the peer address.
    REQUIRE(client.connect(path).has_value());
    auto peer = client.peer_address();
    REQUIRE(peer.has_value());
    CHECK(peer->path() == path);
    auto s4 = co_await client.send("connected");
    REQUIRE(s4.has_value());
    const std::string got = co_await receive_text(&server);
    CHECK(got == "connected");

    // The name is taken while the server lives.
    auto again = unix_datagram::bind(path);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error() == std::errc::address_in_use);
}

/// `exchange_with` on a path, then what is left once the server closed: the socket file.
eddy::task<> path_lifecycle(std::string path, std::string client_path) {
    co_await exchange_with(path, client_path);
    // Sends find no one, and binding again needs the file removed first.
    auto sender = unix_datagram::unbound();
    REQUIRE(sender.has_value());
    auto refused = co_await sender->send_to("x", path);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == std::errc::connection_refused);
    auto missing = co_await sender->send_to("x", path + ".missing");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    auto stale = unix_datagram::bind(path);
    REQUIRE_FALSE(stale.has_value());
    CHECK(stale.error() == std::errc::address_in_use);
}

/// `exchange_with` on an abstract name, which is free again once the server closed.
eddy::task<> abstract_lifecycle(std::string name, std::string client_name) {
    co_await exchange_with(name, client_name);
    auto again = unix_datagram::bind(name);
    REQUIRE(again.has_value());
    auto local = again->local_address();
    REQUIRE(local.has_value());
    CHECK(local->is_abstract());
    CHECK(local->path() == name);
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

TEST_CASE("unix datagram: a pair exchanges datagrams both ways", "[net][unix_datagram]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, b] = connected_pair();
        auto s1 = co_await a.send("ping");
        REQUIRE(s1.has_value());
        CHECK(*s1 == 4);
        std::array<std::byte, 64> buf{};
        auto r1 = co_await b.recv(buf);
        REQUIRE(r1.has_value());
        CHECK(text(buf, *r1) == "ping");
        auto s2 = co_await b.send("pong!");
        REQUIRE(s2.has_value());
        auto r2 = co_await a.recv_from(buf);
        REQUIRE(r2.has_value());
        CHECK(text(buf, r2->first) == "pong!");
        CHECK(r2->second.is_unnamed());
        auto peer = a.peer_address();
        REQUIRE(peer.has_value());
        CHECK(peer->is_unnamed());

        // Closing one end: the other's sends are refused; its receives just wait (datagrams
        // have no end of stream).
        REQUIRE(b.close().has_value());
        auto refused = co_await a.send("anyone?");
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error() == std::errc::connection_refused);
        auto waits = co_await eddy::timeout(5ms, a.recv(buf));
        REQUIRE_FALSE(waits.has_value());
        CHECK(waits.error() == eddy::errc::timed_out);
    });
}

TEST_CASE("unix datagram: bind to a path in a temporary directory", "[net][unix_datagram]") {
    temp_dir dir;
    const std::string path = dir.file("server.sock");
    const std::string client_path = dir.file("client.sock");
    on_each_io_config([&] { return path_lifecycle(path, client_path); });
}

TEST_CASE("unix datagram: bind to an abstract address", "[net][unix_datagram]") {
    const std::string name = abstract_name();
    const std::string client_name = abstract_name();
    on_each_io_config([&] { return abstract_lifecycle(name, client_name); });
}

TEST_CASE("unix datagram: truncation is reported and peek keeps the datagram",
          "[net][unix_datagram]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, b] = connected_pair();
        std::array<std::byte, 200> big{};
        big.fill(std::byte{'z'});
        std::array<std::byte, 16> small{};
        std::array<std::byte, 256> large{};
        for (int i = 0; i < 2; ++i) {
            auto s = co_await a.send(big);
            REQUIRE(s.has_value());
            CHECK(*s == 200);
        }
        auto peeked = co_await b.peek(small);
        REQUIRE_FALSE(peeked.has_value());
        CHECK(peeked.error() == std::errc::message_size);
        auto whole = co_await b.recv(large); // the peeked datagram, whole
        REQUIRE(whole.has_value());
        CHECK(*whole == 200);
        auto cut = co_await b.recv_from(small); // the second, cut and consumed
        REQUIRE_FALSE(cut.has_value());
        CHECK(cut.error() == std::errc::message_size);
        auto none = co_await eddy::timeout(5ms, b.recv(large));
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error() == eddy::errc::timed_out);
    });
}

TEST_CASE("unix datagram: recv waits, can be aborted or timed out, and keeps working",
          "[net][unix_datagram][cancel]") {
    on_each_io_config([]() -> eddy::task<> {
        auto [a, b] = connected_pair();

        auto aborted = eddy::spawn(receive_text(&b));
        co_await eddy::test::settle(8);
        const bool cancelled = co_await eddy::test::abort_and_join(aborted);
        CHECK(cancelled);

        std::array<std::byte, 64> buf{};
        auto timed_out = co_await eddy::timeout(5ms, b.recv(buf));
        REQUIRE_FALSE(timed_out.has_value());
        CHECK(timed_out.error() == eddy::errc::timed_out);

        auto waiting = eddy::spawn(receive_text(&b));
        co_await eddy::test::settle(8);
        CHECK_FALSE(waiting.is_finished());
        auto sender = eddy::spawn([](unix_datagram* s) -> eddy::task<bool> {
            auto r = co_await s->send("late");
            co_return r.has_value();
        }(&a));
        const bool sent = co_await sender;
        CHECK(sent);
        const std::string got = co_await waiting;
        CHECK(got == "late");
    });
}

TEST_CASE("unix datagram: a send waits while the socket's buffer is full", "[net][unix_datagram]") {
    on_each_io_config([]() -> eddy::task<> {
        // 400 KiB-sized datagrams: far more than the send buffer holds (net.core.wmem_default,
        // 208 KiB by default, counts each datagram's whole allocation).
        static constexpr int count = 400;
        static constexpr std::size_t size = 1024;
        auto [a, b] = connected_pair();
        auto sender = eddy::spawn([](unix_datagram* s) -> eddy::task<int> {
            std::vector<std::byte> datagram(size);
            for (int i = 0; i < count; ++i) {
                std::memcpy(datagram.data(), &i, sizeof i);
                auto r = co_await s->send(datagram);
                if (!r || *r != size)
                    co_return i;
            }
            co_return count;
        }(&a));
        co_await eddy::test::settle(8);
        CHECK_FALSE(sender.is_finished()); // suspended on the full buffer
        std::vector<std::byte> buf(size);
        for (int i = 0; i < count; ++i) {
            auto r = co_await b.recv(buf);
            REQUIRE(r.has_value());
            REQUIRE(*r == size);
            int seq = -1;
            std::memcpy(&seq, buf.data(), sizeof seq);
            REQUIRE(seq == i);
        }
        const int sent = co_await sender;
        CHECK(sent == count);
    });
}

TEST_CASE("unix datagram: address errors", "[net][unix_datagram]") {
    on_each_io_config([]() -> eddy::task<> {
        auto empty = unix_datagram::bind("");
        REQUIRE_FALSE(empty.has_value());
        CHECK(empty.error() == std::errc::invalid_argument);
        auto too_long = unix_datagram::bind("/" + std::string(200, 'x'));
        REQUIRE_FALSE(too_long.has_value());
        CHECK(too_long.error() == std::errc::filename_too_long);
        auto ip = unix_datagram::bind(socket_address::ipv4_loopback(0));
        REQUIRE_FALSE(ip.has_value());
        CHECK(ip.error() == std::errc::address_family_not_supported);

        auto s = unix_datagram::unbound();
        REQUIRE(s.has_value());
        auto unconnected = co_await s->send("x");
        REQUIRE_FALSE(unconnected.has_value());
        CHECK(unconnected.error() == std::errc::not_connected);
        auto bad_path = co_await s->send_to("x", "");
        REQUIRE_FALSE(bad_path.has_value());
        CHECK(bad_path.error() == std::errc::invalid_argument);
        auto no_peer = s->peer_address();
        REQUIRE_FALSE(no_peer.has_value());
        CHECK(no_peer.error() == std::errc::not_connected);

        // Linux autobind: binding to the unnamed address picks an abstract name.
        auto auto_bound = unix_datagram::bind(socket_address::unix_unnamed());
        REQUIRE(auto_bound.has_value());
        auto name = auto_bound->local_address();
        REQUIRE(name.has_value());
        CHECK(name->is_abstract());
    });
}

TEST_CASE("unix datagram: creating one outside a runtime is a logic error",
          "[net][unix_datagram]") {
    CHECK_THROWS_AS(unix_datagram::pair(), std::logic_error);
    CHECK_THROWS_AS(unix_datagram::unbound(), std::logic_error);
}
