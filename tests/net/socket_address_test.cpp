#include <eddy/net/socket_address.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using eddy::net::address_family;
using eddy::net::socket_address;

namespace {

constexpr std::size_t sun_path_offset = offsetof(sockaddr_un, sun_path);

socket_address parsed(std::string_view text) {
    auto r = socket_address::parse(text);
    INFO("parse(\"" << std::string(text) << "\"): " << r.error().message());
    REQUIRE(r.has_value());
    return *r;
}

std::error_code parse_error(std::string_view text) {
    auto r = socket_address::parse(text);
    INFO("parse(\"" << std::string(text) << "\") should fail");
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

/// A plain socket that closes itself.
struct fd_guard {
    int fd;
    explicit fd_guard(int f) : fd(f) {}
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard() {
        if (fd >= 0)
            ::close(fd);
    }
};

} // namespace

TEST_CASE("socket_address is a trivially copyable inline value", "[net][socket_address]") {
    STATIC_REQUIRE(std::is_trivially_copyable_v<socket_address>);
    STATIC_REQUIRE(sizeof(socket_address) <= sizeof(sockaddr_storage) + sizeof(socklen_t) + 4);
    STATIC_REQUIRE(socket_address::native_capacity() == sizeof(sockaddr_storage));
}

TEST_CASE("a default socket_address is unspecified", "[net][socket_address]") {
    const socket_address a;
    CHECK(a.family() == address_family::unspecified);
    CHECK(a.native_size() == 0);
    CHECK(a.port() == 0);
    CHECK_FALSE(a.is_loopback());
    CHECK_FALSE(a.is_unspecified());
    CHECK(a.path().empty());
    CHECK(a.to_string() == "(unspecified)");
    CHECK(a == socket_address());
    CHECK_THROWS_AS(a.ipv4_octets(), std::logic_error);
    CHECK_THROWS_AS(a.ipv6_octets(), std::logic_error);
    socket_address b;
    CHECK_THROWS_AS(b.set_port(1), std::logic_error);
}

TEST_CASE("IPv4 construction, accessors and native form", "[net][socket_address]") {
    const auto a = socket_address::ipv4({192, 168, 1, 20}, 8080);
    CHECK(a.family() == address_family::ipv4);
    CHECK(a.is_ipv4());
    CHECK(a.port() == 8080);
    CHECK(a.ipv4_octets() == std::array<std::uint8_t, 4>{192, 168, 1, 20});
    CHECK(a.scope_id() == 0);
    CHECK(a.native_size() == sizeof(sockaddr_in));
    CHECK(a.to_string() == "192.168.1.20:8080");
    CHECK_THROWS_AS(a.ipv6_octets(), std::logic_error);

    const auto* sin = reinterpret_cast<const sockaddr_in*>(a.native());
    CHECK(sin->sin_family == AF_INET);
    CHECK(ntohs(sin->sin_port) == 8080);
    CHECK(ntohl(sin->sin_addr.s_addr) == 0xC0A80114u);

    CHECK(socket_address::ipv4_loopback(1).to_string() == "127.0.0.1:1");
    CHECK(socket_address::ipv4_any(0).to_string() == "0.0.0.0:0");
    CHECK(socket_address::ipv4({255, 255, 255, 255}, 65535).to_string() == "255.255.255.255:65535");

    auto b = a;
    b.set_port(9);
    CHECK(b.port() == 9);
    CHECK(b != a);
    b.set_port(8080);
    CHECK(b == a);
}

TEST_CASE("IPv6 construction, accessors and native form", "[net][socket_address]") {
    const std::array<std::uint8_t, 16> fe80_1{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const auto a = socket_address::ipv6(fe80_1, 80, 2);
    CHECK(a.family() == address_family::ipv6);
    CHECK(a.is_ipv6());
    CHECK(a.port() == 80);
    CHECK(a.scope_id() == 2);
    CHECK(a.ipv6_octets() == fe80_1);
    CHECK(a.native_size() == sizeof(sockaddr_in6));
    CHECK(a.to_string() == "[fe80::1%2]:80");
    CHECK_THROWS_AS(a.ipv4_octets(), std::logic_error);

    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a.native());
    CHECK(sin6->sin6_family == AF_INET6);
    CHECK(ntohs(sin6->sin6_port) == 80);
    CHECK(sin6->sin6_scope_id == 2);
    CHECK(std::memcmp(&sin6->sin6_addr, fe80_1.data(), 16) == 0);

    CHECK(socket_address::ipv6_loopback(8080).to_string() == "[::1]:8080");
    CHECK(socket_address::ipv6_any(443).to_string() == "[::]:443");
    CHECK(socket_address::ipv6(fe80_1, 80).to_string() == "[fe80::1]:80");

    auto b = socket_address::ipv6_loopback(1);
    b.set_port(2);
    CHECK(b.port() == 2);
}

TEST_CASE("Unix-domain pathname, abstract and unnamed addresses", "[net][socket_address]") {
    SECTION("pathname") {
        auto r = socket_address::unix_path("/tmp/x.sock");
        REQUIRE(r);
        const socket_address a = *r;
        CHECK(a.family() == address_family::unix_domain);
        CHECK(a.is_unix());
        CHECK_FALSE(a.is_abstract());
        CHECK_FALSE(a.is_unnamed());
        CHECK(a.port() == 0);
        CHECK(a.path() == "/tmp/x.sock");
        CHECK(a.to_string() == "/tmp/x.sock");
        // The length counts the terminating NUL.
        CHECK(a.native_size() == sun_path_offset + 11 + 1);
        const auto* sun = reinterpret_cast<const sockaddr_un*>(a.native());
        CHECK(sun->sun_family == AF_UNIX);
        CHECK(std::string(sun->sun_path) == "/tmp/x.sock");
        CHECK_FALSE(a.is_loopback());
        CHECK_FALSE(a.is_unspecified());
        socket_address b = a;
        CHECK_THROWS_AS(b.set_port(1), std::logic_error);
        // Relative paths are fine through unix_path (parse needs '/' or '@').
        auto rel = socket_address::unix_path("run/app.sock");
        REQUIRE(rel);
        CHECK(rel->path() == "run/app.sock");
    }
    SECTION("abstract") {
        auto r = socket_address::unix_path("@eddy-test");
        REQUIRE(r);
        const socket_address a = *r;
        CHECK(a.is_unix());
        CHECK(a.is_abstract());
        CHECK(a.path() == "@eddy-test");
        CHECK(a.to_string() == "@eddy-test");
        // sun_path[0] == 0, then the name, no terminator counted.
        CHECK(a.native_size() == sun_path_offset + 1 + 9);
        const auto* sun = reinterpret_cast<const sockaddr_un*>(a.native());
        CHECK(sun->sun_path[0] == '\0');
        CHECK(std::string_view(sun->sun_path + 1, 9) == "eddy-test");
        // The empty abstract name is a valid, distinct address.
        auto empty = socket_address::unix_path("@");
        REQUIRE(empty);
        CHECK(empty->is_abstract());
        CHECK(empty->native_size() == sun_path_offset + 1);
        CHECK(empty->path() == "@");
        // Abstract names may hold NUL bytes: the length, not a terminator, delimits them.
        using namespace std::string_view_literals;
        auto with_nul = socket_address::unix_path("@a\0b"sv);
        REQUIRE(with_nul);
        CHECK(with_nul->native_size() == sun_path_offset + 4);
        CHECK(with_nul->path() == "@a\0b"sv);
        CHECK(*with_nul != *socket_address::unix_path("@a"));
    }
    SECTION("unnamed") {
        const socket_address a = socket_address::unix_unnamed();
        CHECK(a.is_unix());
        CHECK(a.is_unnamed());
        CHECK_FALSE(a.is_abstract());
        CHECK(a.native_size() == sizeof(sa_family_t));
        CHECK(a.path().empty());
        CHECK(a.to_string() == "(unnamed)");
        CHECK(a == socket_address::unix_unnamed());
    }
    SECTION("length limits") {
        const std::string longest(sizeof(sockaddr_un::sun_path) - 1, 'p');
        auto fits = socket_address::unix_path(longest);
        REQUIRE(fits);
        CHECK(fits->native_size() == sizeof(sockaddr_un));
        CHECK(fits->path() == longest);
        auto too_long = socket_address::unix_path(longest + "p");
        REQUIRE_FALSE(too_long);
        CHECK(too_long.error() == std::errc::filename_too_long);

        auto abstract_fits = socket_address::unix_path("@" + longest);
        REQUIRE(abstract_fits);
        CHECK(abstract_fits->native_size() == sizeof(sockaddr_un));
        CHECK(abstract_fits->path() == "@" + longest);
        auto abstract_too_long = socket_address::unix_path("@" + longest + "p");
        REQUIRE_FALSE(abstract_too_long);
        CHECK(abstract_too_long.error() == std::errc::filename_too_long);

        // Through parse too.
        CHECK(parse_error("/" + longest) == std::errc::filename_too_long);
    }
    SECTION("invalid paths") {
        using namespace std::string_view_literals;
        CHECK(socket_address::unix_path("").error() == std::errc::invalid_argument);
        CHECK(socket_address::unix_path("/tmp/a\0b"sv).error() == std::errc::invalid_argument);
    }
}

TEST_CASE("parse and to_string round-trip every form", "[net][socket_address]") {
    const char* forms[] = {
        "1.2.3.4:80",
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "127.0.0.1:8080",
        "[::1]:8080",
        "[::]:1",
        "[fe80::1%2]:80",
        "[2001:db8::42]:443",
        "[::ffff:10.0.0.1]:53",
        "/tmp/x.sock",
        "/",
        "@abstract",
        "@",
        "/run/a b.sock",
    };
    for (const char* text : forms) {
        INFO(text);
        const socket_address a = parsed(text);
        CHECK(a.to_string() == text);
        CHECK(parsed(a.to_string()) == a);
    }

    const socket_address v4 = parsed("10.1.2.3:4567");
    CHECK(v4 == socket_address::ipv4({10, 1, 2, 3}, 4567));
    const socket_address v6 = parsed("[::1]:9");
    CHECK(v6 == socket_address::ipv6_loopback(9));
    const socket_address scoped = parsed("[fe80::1%7]:80");
    CHECK(scoped.scope_id() == 7);
    CHECK(scoped.port() == 80);

    // Leading zeros in the port are decimal, and inet_pton's canonical output is what prints.
    CHECK(parsed("1.2.3.4:0080").port() == 80);
    CHECK(parsed("[0:0:0:0:0:0:0:1]:5").to_string() == "[::1]:5");
    CHECK(parsed("[2001:DB8::A]:5").to_string() == "[2001:db8::a]:5");
}

TEST_CASE("parse accepts an interface name as the IPv6 zone", "[net][socket_address]") {
    const unsigned lo = ::if_nametoindex("lo");
    if (lo == 0) {
        WARN("no loopback interface named lo: zone-name parsing not checked");
        return;
    }
    const socket_address a = parsed("[fe80::1%lo]:80");
    CHECK(a.scope_id() == lo);
    CHECK(a.to_string() == fmt::format("[fe80::1%{}]:80", lo));
    CHECK(parse_error("[fe80::1%no-such-if0]:80") == std::errc::invalid_argument);
}

TEST_CASE("parse rejects every malformed address", "[net][socket_address]") {
    const char* bad[] = {
        "",                    // empty
        ":80",                 // no host
        "1.2.3.4",             // missing port
        "1.2.3.4:",            // empty port
        "1.2.3.4:65536",       // port too large
        "1.2.3.4:99999999999", // port overflows
        "1.2.3.4:-1",          // signed port
        "1.2.3.4:+80",         // signed port
        "1.2.3.4:8o",          // not a number
        "1.2.3.4:0x50",        // not decimal
        "1.2.3:80",            // bad IPv4
        "1.2.3.4.5:80",        // bad IPv4
        "256.1.1.1:80",        // octet out of range
        "01.2.3.4:80",         // leading zero (octal in inet_aton)
        "localhost:80",        // a name, not an address
        " 1.2.3.4:80",         // whitespace
        "1.2.3.4:80 ",         // whitespace
        "1.2.3.4 :80",         // whitespace
        "1.2.3.4: 80",         // whitespace
        "::1:80",              // unbracketed IPv6 with a port
        "fe80::1%2:80",        // unbracketed IPv6 with a zone and a port
        "::1",                 // bare IPv6, no port
        "[::1]",               // bracketed, no port
        "[::1]:",              // bracketed, empty port
        "[::1]:65536",         // port too large
        "[::1]80",             // no ':' before the port
        "[::1:80",             // unbalanced bracket
        "::1]:80",             // unbalanced bracket
        "[1.2.3.4]:80",        // IPv4 in brackets
        "[::g]:80",            // bad IPv6
        "[fe80::1%]:80",       // empty zone
        "[ ::1]:80",           // whitespace inside brackets
        "[]:80",               // empty brackets
        "1.2.3.4:80:80",       // two ports
        "[::1]:80:80",         // two ports
    };
    for (const char* text : bad) {
        INFO(text);
        CHECK(parse_error(text) == std::errc::invalid_argument);
    }
    using namespace std::string_view_literals;
    CHECK(parse_error("1.2.3.4\0:80"sv) == std::errc::invalid_argument);
    CHECK(parse_error("1.2.3.4:8\0"sv) == std::errc::invalid_argument);
    CHECK(parse_error("[::1\0]:80"sv) == std::errc::invalid_argument);
    // An over-long host is rejected before inet_pton sees it.
    std::string long_v6 = "[";
    long_v6.append(100, '1').append("]:80");
    CHECK(parse_error(long_v6) == std::errc::invalid_argument);
    std::string long_v4(100, '1');
    long_v4.append(":80");
    CHECK(parse_error(long_v4) == std::errc::invalid_argument);
}

TEST_CASE("parse_ip takes a bare address and a separate port", "[net][socket_address]") {
    auto v4 = socket_address::parse_ip("10.0.0.1", 80);
    REQUIRE(v4);
    CHECK(*v4 == socket_address::ipv4({10, 0, 0, 1}, 80));
    auto v6 = socket_address::parse_ip("::1", 443);
    REQUIRE(v6);
    CHECK(*v6 == socket_address::ipv6_loopback(443));
    auto scoped = socket_address::parse_ip("fe80::1%3", 1);
    REQUIRE(scoped);
    CHECK(scoped->to_string() == "[fe80::1%3]:1");

    for (const char* bad : {"", "10.0.0.1:80", "[::1]", "localhost", "/tmp/x", " ::1", "1.2.3"}) {
        INFO(bad);
        auto r = socket_address::parse_ip(bad, 1);
        REQUIRE_FALSE(r);
        CHECK(r.error() == std::errc::invalid_argument);
    }
}

TEST_CASE("equality compares family, address, port, scope and path", "[net][socket_address]") {
    const auto v4 = socket_address::ipv4_loopback(80);
    CHECK(v4 == socket_address::ipv4({127, 0, 0, 1}, 80));
    CHECK(v4 != socket_address::ipv4_loopback(81));
    CHECK(v4 != socket_address::ipv4({127, 0, 0, 2}, 80));
    CHECK(v4 != socket_address::ipv6_loopback(80));
    CHECK(v4 != socket_address());

    const auto v6 = parsed("[fe80::1%2]:80");
    CHECK(v6 == parsed("[fe80::1%2]:80"));
    CHECK(v6 != parsed("[fe80::1%3]:80"));
    CHECK(v6 != parsed("[fe80::1]:80"));
    CHECK(v6 != parsed("[fe80::2%2]:80"));
    CHECK(v6 != parsed("[fe80::1%2]:81"));
    // The v4-mapped form is a different address.
    CHECK(parsed("[::ffff:127.0.0.1]:80") != v4);

    const auto p = parsed("/tmp/a.sock");
    CHECK(p == parsed("/tmp/a.sock"));
    CHECK(p != parsed("/tmp/b.sock"));
    CHECK(p != parsed("@/tmp/a.sock"));
    CHECK(parsed("@x") == parsed("@x"));
    CHECK(parsed("@x") != parsed("@y"));
    CHECK(socket_address::unix_unnamed() != p);

    // Bytes that are not part of the address do not matter: the flow label, sin_zero, and a
    // pathname's length with or without its terminating NUL.
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(80);
    sin6.sin6_scope_id = 2;
    sin6.sin6_flowinfo = htonl(0x12345);
    REQUIRE(::inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr) == 1);
    auto with_flow =
        socket_address::from_native(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
    REQUIRE(with_flow);
    CHECK(*with_flow == v6);

    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(80);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::memset(sin.sin_zero, 0xAB, sizeof(sin.sin_zero));
    auto dirty = socket_address::from_native(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
    REQUIRE(dirty);
    CHECK(*dirty == v4);

    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, "/tmp/a.sock", 11);
    auto no_nul = socket_address::from_native(reinterpret_cast<const sockaddr*>(&sun),
                                              static_cast<socklen_t>(sun_path_offset + 11));
    REQUIRE(no_nul);
    CHECK(no_nul->native_size() == sun_path_offset + 11);
    CHECK(*no_nul == p);
    CHECK(no_nul->path() == "/tmp/a.sock");
}

TEST_CASE("is_loopback and is_unspecified", "[net][socket_address]") {
    CHECK(socket_address::ipv4_loopback(1).is_loopback());
    CHECK(parsed("127.255.0.9:1").is_loopback());
    CHECK_FALSE(parsed("128.0.0.1:1").is_loopback());
    CHECK(socket_address::ipv6_loopback(1).is_loopback());
    CHECK(parsed("[::ffff:127.0.0.1]:1").is_loopback());
    CHECK_FALSE(parsed("[::2]:1").is_loopback());
    CHECK_FALSE(parsed("[::ffff:10.0.0.1]:1").is_loopback());
    CHECK_FALSE(socket_address::ipv4_any(1).is_loopback());
    CHECK_FALSE(socket_address::ipv6_any(1).is_loopback());
    CHECK_FALSE(parsed("@lo").is_loopback());

    CHECK(socket_address::ipv4_any(1).is_unspecified());
    CHECK(socket_address::ipv6_any(1).is_unspecified());
    CHECK(parsed("0.0.0.0:80").is_unspecified());
    CHECK(parsed("[::]:80").is_unspecified());
    CHECK_FALSE(socket_address::ipv4_loopback(1).is_unspecified());
    CHECK_FALSE(socket_address::ipv6_loopback(1).is_unspecified());
    CHECK_FALSE(socket_address::unix_unnamed().is_unspecified());
    CHECK_FALSE(socket_address().is_unspecified());
}

TEST_CASE("from_native copies each family and rejects bad input", "[net][socket_address]") {
    SECTION("ipv4, with a longer buffer length normalised") {
        sockaddr_storage ss{};
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(1234);
        sin->sin_addr.s_addr = htonl(0x0A000001);
        auto a = socket_address::from_native(reinterpret_cast<const sockaddr*>(&ss), sizeof(ss));
        REQUIRE(a);
        CHECK(a->to_string() == "10.0.0.1:1234");
        CHECK(a->native_size() == sizeof(sockaddr_in));
        auto short_len = socket_address::from_native(reinterpret_cast<const sockaddr*>(&ss),
                                                     sizeof(sockaddr_in) - 1);
        REQUIRE_FALSE(short_len);
        CHECK(short_len.error() == std::errc::invalid_argument);
    }
    SECTION("ipv6") {
        const auto src = socket_address::ipv6_loopback(4321);
        auto a = socket_address::from_native(src.native(), src.native_size());
        REQUIRE(a);
        CHECK(*a == src);
        CHECK(a->native_size() == sizeof(sockaddr_in6));
        auto short_len = socket_address::from_native(src.native(), sizeof(sockaddr_in6) - 1);
        REQUIRE_FALSE(short_len);
        CHECK(short_len.error() == std::errc::invalid_argument);
    }
    SECTION("unix: pathname, abstract, unnamed") {
        for (const char* text : {"/tmp/x.sock", "@abs"}) {
            INFO(text);
            const socket_address src = parsed(text);
            auto a = socket_address::from_native(src.native(), src.native_size());
            REQUIRE(a);
            CHECK(*a == src);
            CHECK(a->native_size() == src.native_size());
            CHECK(a->to_string() == text);
        }
        const auto unnamed = socket_address::unix_unnamed();
        auto a = socket_address::from_native(unnamed.native(), unnamed.native_size());
        REQUIRE(a);
        CHECK(a->is_unnamed());
        CHECK(a->to_string() == "(unnamed)");
        sockaddr_storage big{};
        big.ss_family = AF_UNIX;
        auto too_long = socket_address::from_native(reinterpret_cast<const sockaddr*>(&big),
                                                    sizeof(sockaddr_un) + 1);
        REQUIRE_FALSE(too_long);
        CHECK(too_long.error() == std::errc::invalid_argument);
    }
    SECTION("unsupported family, null, too short for a family") {
        sockaddr_storage ss{};
        ss.ss_family = AF_PACKET;
        auto packet =
            socket_address::from_native(reinterpret_cast<const sockaddr*>(&ss), sizeof(ss));
        REQUIRE_FALSE(packet);
        CHECK(packet.error() == std::errc::address_family_not_supported);
        ss.ss_family = AF_UNSPEC;
        auto unspec =
            socket_address::from_native(reinterpret_cast<const sockaddr*>(&ss), sizeof(ss));
        REQUIRE_FALSE(unspec);
        CHECK(unspec.error() == std::errc::address_family_not_supported);

        auto null = socket_address::from_native(nullptr, sizeof(ss));
        REQUIRE_FALSE(null);
        CHECK(null.error() == std::errc::invalid_argument);
        ss.ss_family = AF_INET;
        auto one_byte = socket_address::from_native(reinterpret_cast<const sockaddr*>(&ss), 1);
        REQUIRE_FALSE(one_byte);
        CHECK(one_byte.error() == std::errc::invalid_argument);
        auto zero = socket_address::from_native(reinterpret_cast<const sockaddr*>(&ss), 0);
        REQUIRE_FALSE(zero);
        CHECK(zero.error() == std::errc::invalid_argument);
    }
}

TEST_CASE("native_buffer and set_native_size take what the kernel wrote", "[net][socket_address]") {
    // Start from a Unix address with a long path, then let "the kernel" write an IPv4 address:
    // stale bytes past the new length must not matter.
    socket_address a = parsed("/tmp/a-rather-long-path-name.sock");
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(7);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::memcpy(a.native_buffer(), &sin, sizeof(sin));
    a.set_native_size(sizeof(sin));
    CHECK(a.family() == address_family::ipv4);
    CHECK(a == socket_address::ipv4_loopback(7));

    // A shorter pathname over a longer one.
    socket_address b = parsed("/tmp/a-rather-long-path-name.sock");
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, "/x", 3);
    std::memcpy(b.native_buffer(), &sun, sun_path_offset + 3);
    b.set_native_size(static_cast<socklen_t>(sun_path_offset + 3));
    CHECK(b.path() == "/x");
    CHECK(b == parsed("/x"));

    // Nothing written (recvfrom on a connected socket may report length 0).
    b.set_native_size(0);
    CHECK(b.family() == address_family::unspecified);
    CHECK(b == socket_address());

    // An over-long report is clamped to the buffer.
    socket_address c = socket_address::ipv4_loopback(1);
    c.set_native_size(socket_address::native_capacity() + 100);
    CHECK(c.native_size() == socket_address::native_capacity());
    CHECK(c.family() == address_family::ipv4);
}

TEST_CASE("fmt and ostream format as to_string", "[net][socket_address]") {
    CHECK(fmt::format("{}", socket_address::ipv4_loopback(80)) == "127.0.0.1:80");
    CHECK(fmt::format("{}", parsed("[fe80::1%2]:80")) == "[fe80::1%2]:80");
    CHECK(fmt::format("{}", parsed("@abs")) == "@abs");
    CHECK(fmt::format("{}", socket_address::unix_unnamed()) == "(unnamed)");
    CHECK(fmt::format("{}", socket_address()) == "(unspecified)");
    CHECK(fmt::format("<{:>14}>", socket_address::ipv4_loopback(1)) == "<   127.0.0.1:1>");
    CHECK(fmt::format("<{:<14}>", socket_address::ipv4_loopback(1)) == "<127.0.0.1:1   >");

    std::ostringstream os;
    os << socket_address::ipv6_loopback(9) << ' ' << parsed("/tmp/x.sock");
    CHECK(os.str() == "[::1]:9 /tmp/x.sock");
}

TEST_CASE("local_address_of and peer_address_of wrap getsockname and getpeername",
          "[net][socket_address]") {
    SECTION("TCP over IPv4 loopback") {
        fd_guard listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(listener.fd >= 0);
        const auto any_port = socket_address::ipv4_loopback(0);
        REQUIRE(::bind(listener.fd, any_port.native(), any_port.native_size()) == 0);
        REQUIRE(::listen(listener.fd, 1) == 0);
        auto local = eddy::net::local_address_of(listener.fd);
        REQUIRE(local);
        CHECK(local->is_ipv4());
        CHECK(local->is_loopback());
        CHECK(local->port() != 0);
        CHECK(local->native_size() == sizeof(sockaddr_in));

        auto unconnected = eddy::net::peer_address_of(listener.fd);
        REQUIRE_FALSE(unconnected);
        CHECK(unconnected.error() == std::error_code(ENOTCONN, std::system_category()));

        fd_guard client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(client.fd >= 0);
        REQUIRE(::connect(client.fd, local->native(), local->native_size()) == 0);
        auto peer = eddy::net::peer_address_of(client.fd);
        REQUIRE(peer);
        CHECK(*peer == *local);

        // accept fills a buffer: the client's address comes back through native_buffer.
        socket_address from;
        socklen_t len = socket_address::native_capacity();
        fd_guard accepted(::accept4(listener.fd, from.native_buffer(), &len, SOCK_CLOEXEC));
        REQUIRE(accepted.fd >= 0);
        from.set_native_size(len);
        auto client_local = eddy::net::local_address_of(client.fd);
        REQUIRE(client_local);
        CHECK(from == *client_local);
    }
    SECTION("UDP over IPv6 loopback") {
        fd_guard s(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (s.fd < 0) {
            WARN("no IPv6 sockets here: skipped");
            return;
        }
        const auto any_port = socket_address::ipv6_loopback(0);
        if (::bind(s.fd, any_port.native(), any_port.native_size()) != 0) {
            WARN("cannot bind [::1]: skipped");
            return;
        }
        auto local = eddy::net::local_address_of(s.fd);
        REQUIRE(local);
        CHECK(local->is_ipv6());
        CHECK(local->is_loopback());
        CHECK(local->port() != 0);
    }
    SECTION("Unix socket pair, unnamed, and an abstract bind") {
        int pair[2] = {-1, -1};
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
        fd_guard a(pair[0]);
        fd_guard b(pair[1]);
        auto local = eddy::net::local_address_of(a.fd);
        REQUIRE(local);
        CHECK(local->is_unnamed());
        CHECK(local->to_string() == "(unnamed)");

        fd_guard s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(s.fd >= 0);
        const std::string name = fmt::format("@eddy-socket-address-test-{}", ::getpid());
        auto abstract = socket_address::unix_path(name);
        REQUIRE(abstract);
        REQUIRE(::bind(s.fd, abstract->native(), abstract->native_size()) == 0);
        auto bound = eddy::net::local_address_of(s.fd);
        REQUIRE(bound);
        CHECK(bound->is_abstract());
        CHECK(*bound == *abstract);
        CHECK(bound->to_string() == name);
    }
    SECTION("a bad descriptor reports errno") {
        auto r = eddy::net::local_address_of(-1);
        REQUIRE_FALSE(r);
        CHECK(r.error() == std::error_code(EBADF, std::system_category()));
    }
}
