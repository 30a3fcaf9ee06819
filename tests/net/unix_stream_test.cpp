#include <eddy/net/socket_address.hpp>
#include <eddy/net/split.hpp>
#include <eddy/net/unix_listener.hpp>
#include <eddy/net/unix_stream.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include <sys/socket.h>
#include <unistd.h>

#include "support/io.hpp"
#include "support/net.hpp"
#include "support/runtimes.hpp"

using eddy::net::socket_address;
using eddy::net::unix_listener;
using eddy::net::unix_stream;
using eddy::test::ensure;
using eddy::test::failed_with;
using eddy::test::must;

namespace {

/// A name in the abstract namespace no other test (or process) uses.
std::string abstract_name() {
    static std::atomic<int> counter{0};
    return fmt::format("@eddy-test-{}-{}", ::getpid(), counter.fetch_add(1));
}

/// Connects to `where`, sends `size` bytes of a pattern, shuts writing down and checks that the
/// echo comes back in full, then that the server echoed exactly that much.
eddy::task<> echo_round_trip(unix_listener l, std::string where, std::size_t size) {
    auto server = eddy::spawn(eddy::test::echo_server(std::move(l), 1));
    auto c = must(co_await unix_stream::connect(where), "connect " + where);
    auto [rd, wr] = std::move(c).split();
    auto writer = eddy::spawn(eddy::test::send_pattern(std::move(wr), size, 31));
    const std::size_t back = co_await eddy::test::receive_pattern(std::move(rd), 31);
    const std::size_t sent = co_await writer;
    const std::size_t echoed = co_await server;
    ensure(sent == size && back == size && echoed == size,
           fmt::format("sent {}, echoed {}, got back {}", sent, echoed, back));
}

} // namespace

TEST_CASE("unix stream: echo over a path in a temporary directory", "[net][unix]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    const std::string path = (dir.path() / "echo.sock").string();
    auto rt = cfg.runtime();
    rt.block_on([](std::string path) -> eddy::task<> {
        auto l = must(unix_listener::bind(path), "bind " + path);
        ensure(std::filesystem::exists(path), "binding did not create the socket file");
        const auto local = must(l.local_address(), "local_address");
        ensure(local.is_unix() && local.path() == path, "listener address: " + local.to_string());
        co_await echo_round_trip(std::move(l), path, 256 * 1024);
        // The file stays after the listener closed; connecting to it is refused.
        ensure(std::filesystem::exists(path), "the socket file vanished");
        auto stale = co_await unix_stream::connect(path);
        ensure(failed_with(stale, std::errc::connection_refused),
               "connect to a stale socket file: " + eddy::test::describe(stale));
        // Binding over an existing file fails.
        ensure(failed_with(unix_listener::bind(path), std::errc::address_in_use),
               "bind over an existing socket file");
    }(path));
}

TEST_CASE("unix stream: echo over an abstract name", "[net][unix]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([](std::string name) -> eddy::task<> {
        auto l = must(unix_listener::bind(name), "bind " + name);
        const auto local = must(l.local_address(), "local_address");
        ensure(local.is_abstract() && local.to_string() == name,
               "listener address: " + local.to_string());
        ensure(failed_with(unix_listener::bind(name), std::errc::address_in_use),
               "a second bind of one abstract name");

        // Addresses as the two ends see them.
        auto server = eddy::spawn([](unix_listener* l) -> eddy::task<unix_stream> {
            auto c = must(co_await l->accept(), "accept");
            ensure(c.second.is_unnamed(), "an unbound client has an address");
            co_return std::move(c.first);
        }(&l));
        auto c = must(co_await unix_stream::connect(name), "connect " + name);
        auto s = co_await server;
        ensure(must(c.peer_address(), "peer_address") == local, "client's peer address");
        ensure(must(s.local_address(), "local_address") == local, "server's local address");
        ensure(must(c.local_address(), "local_address").is_unnamed(), "client's local address");
        must(co_await c.write_all("ping"), "write");
        std::array<std::byte, 4> in{};
        must(co_await s.read_exact(in), "read");
        ensure(eddy::test::as_text(in) == "ping", "wrong data");
        c = unix_stream();
        s = unix_stream();

        co_await echo_round_trip(std::move(l), name, 256 * 1024);
        // Closed: the name is free again, and nobody answers it.
        auto gone = co_await unix_stream::connect(name);
        ensure(failed_with(gone, std::errc::connection_refused),
               "connect to a closed abstract name: " + eddy::test::describe(gone));
        auto again = must(unix_listener::bind(name), "bind the name again");
        (void)again;
    }(abstract_name()));
}

TEST_CASE("unix stream: a pair, both ways at once, then end of stream", "[net][unix]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        constexpr std::size_t size = std::size_t{1} << 20;
        auto [a, b] = must(unix_stream::pair(), "pair");
        ensure(must(a.peer_address(), "peer_address").is_unnamed(), "a pair end has a name");
        auto [ard, awr] = std::move(a).split();
        auto [brd, bwr] = std::move(b).split();
        auto a_out = eddy::spawn(eddy::test::send_pattern(std::move(awr), size, 41));
        auto b_out = eddy::spawn(eddy::test::send_pattern(std::move(bwr), size, 42));
        auto a_in = eddy::spawn(eddy::test::receive_pattern(std::move(ard), 42));
        auto b_in = eddy::spawn(eddy::test::receive_pattern(std::move(brd), 41));
        const std::size_t sent_a = co_await a_out;
        const std::size_t sent_b = co_await b_out;
        const std::size_t got_a = co_await a_in;
        const std::size_t got_b = co_await b_in;
        ensure(sent_a == size && sent_b == size && got_a == size && got_b == size,
               fmt::format("sent {} and {}, received {} and {}", sent_a, sent_b, got_a, got_b));
    }());
}

TEST_CASE("unix stream: half-close, EOF, and writing to a closed peer", "[net][unix]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    struct sigaction sa {};
    ::sigaction(SIGPIPE, nullptr, &sa);
    REQUIRE(sa.sa_handler == SIG_DFL); // so a missing MSG_NOSIGNAL would kill the test
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto [a, b] = must(unix_stream::pair(), "pair");
        // b waits for data when a half-closes.
        auto reader = eddy::spawn([](unix_stream s) -> eddy::task<unix_stream> {
            auto got = co_await eddy::test::read_to_end(s);
            ensure(eddy::test::as_text(got) == "question", "wrong request");
            must(co_await s.write_all("answer"), "reply after end of stream");
            co_return std::move(s);
        }(std::move(b)));
        co_await eddy::test::settle();
        must(co_await a.write_all("question"), "write");
        must(a.shutdown(SHUT_WR), "shutdown");
        std::array<std::byte, 6> in{};
        must(co_await a.read_exact(in), "read the reply");
        ensure(eddy::test::as_text(in) == "answer", "wrong reply");
        auto late = co_await a.write_all("late");
        ensure(failed_with(late, std::errc::broken_pipe),
               "write after shutdown: " + eddy::test::describe(late));
        auto peer = co_await reader;
        must(peer.close(), "close");
        auto eof = co_await a.read(in);
        ensure(eof && *eof == 0, "no end of stream after the peer closed");
        auto w = co_await a.write_all("to nobody");
        ensure(failed_with(w, std::errc::broken_pipe),
               "write to a closed peer: " + eddy::test::describe(w));
    }());
}

TEST_CASE("unix stream: split halves in two tasks, 10,000 messages", "[net][unix][split]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        constexpr std::size_t messages = 10'000;
        constexpr std::size_t size = 24;
        auto [a, b] = must(unix_stream::pair(), "pair");
        auto echo = eddy::spawn(eddy::test::echo(std::move(b)));
        auto [rd, wr] = std::move(a).split();
        auto writer = eddy::spawn([](eddy::net::write_half w) -> eddy::task<> {
            std::array<std::byte, size> msg{};
            for (std::size_t i = 0; i < messages; ++i) {
                eddy::test::fill_pattern(msg, i * size, 51);
                must(co_await w.write_all(msg), "write");
            }
            // The echo ends, and so does the reader. (Dropping the half would do it too, but
            // a spawned task's frame, and so its parameters, lives as long as its join handle.)
            must(w.shutdown_write(), "shutdown_write");
        }(std::move(wr)));
        auto reader = eddy::spawn(eddy::test::receive_pattern(std::move(rd), 51));
        co_await writer;
        const std::size_t got = co_await reader;
        const std::size_t echoed = co_await echo;
        ensure(got == messages * size && echoed == messages * size,
               fmt::format("echoed {}, read back {}", echoed, got));
    }());
}

TEST_CASE("unix stream: connect and bind errors", "[net][unix]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](std::string dir) -> eddy::task<> {
        auto missing = co_await unix_stream::connect(dir + "/nobody.sock");
        ensure(failed_with(missing, std::errc::no_such_file_or_directory),
               "connect to a missing path: " + eddy::test::describe(missing));
        auto no_dir = unix_listener::bind(dir + "/no/such/dir.sock");
        ensure(failed_with(no_dir, std::errc::no_such_file_or_directory),
               "bind in a missing directory: " + eddy::test::describe(no_dir));
        const std::string too_long = dir + "/" + std::string(200, 'x');
        auto long_connect = co_await unix_stream::connect(too_long);
        ensure(!long_connect, "connect to a path longer than sun_path");
        ensure(!unix_listener::bind(too_long), "bind to a path longer than sun_path");
        auto ip = co_await unix_stream::connect(socket_address::ipv4_loopback(1));
        ensure(failed_with(ip, std::errc::address_family_not_supported),
               "unix connect to an IP address: " + eddy::test::describe(ip));
        ensure(failed_with(unix_listener::bind(socket_address::ipv4_loopback(0)),
                           std::errc::address_family_not_supported),
               "unix bind to an IP address");

        unix_stream empty;
        std::array<std::byte, 4> buf{};
        auto r = co_await empty.read(buf);
        ensure(failed_with(r, std::errc::bad_file_descriptor), "read on an empty stream");
        auto w = co_await empty.write_all("x");
        ensure(failed_with(w, std::errc::bad_file_descriptor), "write on an empty stream");
        unix_listener none;
        auto a = co_await none.accept();
        ensure(failed_with(a, std::errc::bad_file_descriptor), "accept on an empty listener");
    }(dir.path().string()));
}
