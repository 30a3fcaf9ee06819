#pragma once
//! `eddy::net::socket_address`: one IPv4, IPv6 or Unix-domain socket address, as a plain value.
//!
//! ```cpp
//! auto a = eddy::net::socket_address::parse("127.0.0.1:8080");      // result<socket_address>
//! auto b = eddy::net::socket_address::ipv6_loopback(443);            // [::1]:443
//! auto c = eddy::net::socket_address::unix_path("/run/app.sock");    // result<socket_address>
//! ::connect(fd, a->native(), a->native_size());
//! fmt::print("listening on {}\n", b);                                // "[::1]:443"
//! ```
//!
//! - Storage is inline: a union of the kernel's `sockaddr_*` structures (as large as
//!   `sockaddr_storage`) plus the length in use. No allocation; trivially copyable; any thread may
//!   read a value, and copies are independent.
//! - The length decides everything: `native_size() == 0` is the unspecified (default) address;
//!   otherwise the family is read from the stored `sa_family_t`. Bytes past the length are never
//!   read, so a buffer the kernel filled (see `native_buffer`) needs no clearing first.
//! - Unix-domain forms (Linux):
//!   * pathname: `unix_path("/tmp/x.sock")`; the stored length counts the path and its
//!     terminating NUL: `offsetof(sockaddr_un, sun_path) + size + 1`. At most 107 bytes
//!     (`sizeof(sun_path) - 1`), else `std::errc::filename_too_long`.
//!   * abstract: a leading '@' selects the abstract namespace: `unix_path("@name")` stores
//!     `sun_path[0] = 0` followed by the bytes of `name`, with no terminator, and the length is
//!     exactly `offsetof(sun_path) + 1 + name.size()` (the kernel compares abstract names over
//!     that length, so "@a" and "@a\0" are different sockets). At most 107 name bytes.
//!   * unnamed: the address of a socket that was never bound (length `sizeof(sa_family_t)`), what
//!     `accept` reports for a client that did not bind. `unix_unnamed()` builds it.
//! - Text forms (`parse` and `to_string`): "1.2.3.4:80", "[::1]:8080", "[fe80::1%2]:80",
//!   "/tmp/x.sock", "@abstract"; `to_string` also gives "(unnamed)" and "(unspecified)".
//!   Parsing is strict and uses `inet_pton`: a port is required and is 0..65535 in decimal,
//!   IPv6 must be bracketed when a port follows, no whitespace anywhere. Every parse error is
//!   `std::errc::invalid_argument` (or `filename_too_long` for an over-long Unix path).
//! - Equality compares what identifies the endpoint: family, then address and port (IPv4),
//!   address, port and scope id (IPv6; the flow label is ignored), or the path / abstract name
//!   (Unix). Padding and unused bytes never matter.

#include <eddy/config.hpp>

#include <eddy/result.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
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

namespace eddy::net {

/// The kind of address a `socket_address` holds.
enum class address_family {
    unspecified, ///< default-constructed, or a length/family the type does not know
    ipv4,        ///< AF_INET
    ipv6,        ///< AF_INET6
    unix_domain, ///< AF_UNIX (pathname, abstract or unnamed)
};

namespace detail {

inline std::error_code invalid_address() noexcept {
    return std::make_error_code(std::errc::invalid_argument);
}

/// A decimal port: one or more digits, value at most 65535. No sign, no spaces.
inline bool parse_port(std::string_view text, std::uint16_t& port) noexcept {
    unsigned value = 0;
    const char* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value, 10);
    if (text.empty() || ec != std::errc() || ptr != end || value > 65535)
        return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

} // namespace detail

class socket_address {
public:
    /// The unspecified address: family `unspecified`, `native_size() == 0`.
    socket_address() noexcept : addr_{}, size_(0) {}

    // ---- construction ---------------------------------------------------------------------

    /// `a.b.c.d:port` from the four octets in network order (`{127, 0, 0, 1}`).
    static socket_address ipv4(std::array<std::uint8_t, 4> octets, std::uint16_t port) noexcept {
        socket_address a;
        a.addr_.v4.sin_family = AF_INET;
        a.addr_.v4.sin_port = htons(port);
        std::memcpy(&a.addr_.v4.sin_addr, octets.data(), octets.size());
        a.size_ = sizeof(sockaddr_in);
        return a;
    }
    /// 127.0.0.1:port
    static socket_address ipv4_loopback(std::uint16_t port) noexcept {
        return ipv4({127, 0, 0, 1}, port);
    }
    /// 0.0.0.0:port (bind to every IPv4 interface)
    static socket_address ipv4_any(std::uint16_t port) noexcept { return ipv4({0, 0, 0, 0}, port); }

    /// `[addr%scope_id]:port` from the sixteen octets in network order. The scope id (an
    /// interface index) matters for link-local addresses only; 0 means none.
    static socket_address ipv6(std::array<std::uint8_t, 16> octets, std::uint16_t port,
                               std::uint32_t scope_id = 0) noexcept {
        socket_address a;
        a.addr_.v6.sin6_family = AF_INET6;
        a.addr_.v6.sin6_port = htons(port);
        std::memcpy(&a.addr_.v6.sin6_addr, octets.data(), octets.size());
        a.addr_.v6.sin6_scope_id = scope_id;
        a.size_ = sizeof(sockaddr_in6);
        return a;
    }
    /// [::1]:port
    static socket_address ipv6_loopback(std::uint16_t port) noexcept {
        return ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, port);
    }
    /// [::]:port (bind to every IPv6 interface, and IPv4 too unless IPV6_V6ONLY is set)
    static socket_address ipv6_any(std::uint16_t port) noexcept { return ipv6({}, port); }

    /// A Unix-domain address. A leading '@' selects the Linux abstract namespace (see the header
    /// comment for the exact lengths). Errors: `std::errc::invalid_argument` for an empty path or
    /// a pathname containing a NUL byte, `std::errc::filename_too_long` when it does not fit
    /// `sun_path` (107 bytes of path, or '@' plus 107 bytes of abstract name).
    static result<socket_address> unix_path(std::string_view path) noexcept {
        if (path.empty())
            return detail::invalid_address();
        socket_address a;
        a.addr_.un.sun_family = AF_UNIX;
        if (path.front() == '@') {
            const std::string_view name = path.substr(1);
            if (name.size() + 1 > sizeof(a.addr_.un.sun_path))
                return std::make_error_code(std::errc::filename_too_long);
            a.addr_.un.sun_path[0] = '\0';
            std::memcpy(a.addr_.un.sun_path + 1, name.data(), name.size());
            a.size_ = static_cast<socklen_t>(sun_path_offset + 1 + name.size());
            return a;
        }
        if (path.find('\0') != std::string_view::npos)
            return detail::invalid_address();
        if (path.size() + 1 > sizeof(a.addr_.un.sun_path))
            return std::make_error_code(std::errc::filename_too_long);
        std::memcpy(a.addr_.un.sun_path, path.data(), path.size()); // the NUL is already there
        a.size_ = static_cast<socklen_t>(sun_path_offset + path.size() + 1);
        return a;
    }

    /// The unnamed Unix-domain address (a socket that was never bound). Binding to it asks Linux
    /// to pick a fresh abstract name (autobind).
    static socket_address unix_unnamed() noexcept {
        socket_address a;
        a.addr_.un.sun_family = AF_UNIX;
        a.size_ = static_cast<socklen_t>(sun_path_offset);
        return a;
    }

    /// Copies an address the system produced. `len` is the number of valid bytes at `addr`.
    /// IPv4 and IPv6 lengths are normalised to the structure's size (a longer `len`, such as
    /// `sizeof(sockaddr_storage)`, is fine). Errors: `std::errc::invalid_argument` for a null
    /// pointer or a length too short for the family (or longer than `sockaddr_un` for AF_UNIX),
    /// `std::errc::address_family_not_supported` for a family other than AF_INET, AF_INET6 and
    /// AF_UNIX.
    static result<socket_address> from_native(const sockaddr* addr, socklen_t len) noexcept {
        if (addr == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t)))
            return detail::invalid_address();
        sa_family_t family = 0;
        std::memcpy(&family, reinterpret_cast<const char*>(addr) + offsetof(sockaddr, sa_family),
                    sizeof(family));
        socklen_t keep = 0;
        switch (family) {
        case AF_INET:
            if (len < static_cast<socklen_t>(sizeof(sockaddr_in)))
                return detail::invalid_address();
            keep = sizeof(sockaddr_in);
            break;
        case AF_INET6:
            if (len < static_cast<socklen_t>(sizeof(sockaddr_in6)))
                return detail::invalid_address();
            keep = sizeof(sockaddr_in6);
            break;
        case AF_UNIX:
            if (len > static_cast<socklen_t>(sizeof(sockaddr_un)))
                return detail::invalid_address();
            keep = len;
            break;
        default:
            return std::make_error_code(std::errc::address_family_not_supported);
        }
        socket_address a;
        std::memcpy(&a.addr_, addr, keep);
        a.size_ = keep;
        return a;
    }

    /// Parses "1.2.3.4:80", "[::1]:8080", "[fe80::1%2]:80" / "[fe80::1%eth0]:80" (numeric scope
    /// id or interface name), or a Unix path starting with '/' or '@' (see `unix_path`). Strict;
    /// errors are `std::errc::invalid_argument` (see the header comment).
    static result<socket_address> parse(std::string_view text) noexcept {
        if (!text.empty() && (text.front() == '/' || text.front() == '@'))
            return unix_path(text);
        const std::size_t colon = text.rfind(':');
        std::uint16_t port = 0;
        if (colon == std::string_view::npos || !detail::parse_port(text.substr(colon + 1), port))
            return detail::invalid_address();
        const std::string_view host = text.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
            return parse_ipv6(host.substr(1, host.size() - 2), port);
        if (host.find(':') != std::string_view::npos)
            return detail::invalid_address(); // IPv6 with a port must be bracketed
        return parse_ipv4(host, port);
    }

    /// Parses a bare IP address, without brackets or port ("10.0.0.1", "::1", "fe80::1%2"), and
    /// pairs it with `port`. Errors are `std::errc::invalid_argument`.
    static result<socket_address> parse_ip(std::string_view ip, std::uint16_t port) noexcept {
        if (ip.find(':') != std::string_view::npos)
            return parse_ipv6(ip, port);
        return parse_ipv4(ip, port);
    }

    // ---- observers ------------------------------------------------------------------------

    [[nodiscard]] address_family family() const noexcept {
        if (size_ < static_cast<socklen_t>(sizeof(sa_family_t)))
            return address_family::unspecified;
        switch (addr_.storage.ss_family) {
        case AF_INET:
            return size_ >= static_cast<socklen_t>(sizeof(sockaddr_in))
                       ? address_family::ipv4
                       : address_family::unspecified;
        case AF_INET6:
            return size_ >= static_cast<socklen_t>(sizeof(sockaddr_in6))
                       ? address_family::ipv6
                       : address_family::unspecified;
        case AF_UNIX:
            return address_family::unix_domain;
        default:
            return address_family::unspecified;
        }
    }
    [[nodiscard]] bool is_ipv4() const noexcept { return family() == address_family::ipv4; }
    [[nodiscard]] bool is_ipv6() const noexcept { return family() == address_family::ipv6; }
    [[nodiscard]] bool is_unix() const noexcept { return family() == address_family::unix_domain; }

    /// The port in host order; 0 for Unix-domain and unspecified addresses.
    [[nodiscard]] std::uint16_t port() const noexcept {
        switch (family()) {
        case address_family::ipv4:
            return ntohs(addr_.v4.sin_port);
        case address_family::ipv6:
            return ntohs(addr_.v6.sin6_port);
        default:
            return 0;
        }
    }
    /// Sets the port of an IPv4 or IPv6 address; throws `std::logic_error` for other families.
    void set_port(std::uint16_t port) {
        switch (family()) {
        case address_family::ipv4:
            addr_.v4.sin_port = htons(port);
            return;
        case address_family::ipv6:
            addr_.v6.sin6_port = htons(port);
            return;
        default:
            throw std::logic_error("eddy::net::socket_address::set_port: not an IP address");
        }
    }

    /// The four octets of an IPv4 address, network order (`{127, 0, 0, 1}`). Throws
    /// `std::logic_error` for other families.
    [[nodiscard]] std::array<std::uint8_t, 4> ipv4_octets() const {
        if (!is_ipv4())
            throw std::logic_error("eddy::net::socket_address::ipv4_octets: not an IPv4 address");
        std::array<std::uint8_t, 4> out{};
        std::memcpy(out.data(), &addr_.v4.sin_addr, out.size());
        return out;
    }
    /// The sixteen octets of an IPv6 address, network order. Throws `std::logic_error` for other
    /// families (an IPv4 address is not converted to its v4-mapped form).
    [[nodiscard]] std::array<std::uint8_t, 16> ipv6_octets() const {
        if (!is_ipv6())
            throw std::logic_error("eddy::net::socket_address::ipv6_octets: not an IPv6 address");
        std::array<std::uint8_t, 16> out{};
        std::memcpy(out.data(), &addr_.v6.sin6_addr, out.size());
        return out;
    }
    /// The IPv6 scope id (interface index); 0 for other families.
    [[nodiscard]] std::uint32_t scope_id() const noexcept {
        return is_ipv6() ? addr_.v6.sin6_scope_id : 0;
    }

    /// True for 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104 (a v4 loopback peer seen by a
    /// dual-stack IPv6 socket). False for Unix-domain and unspecified addresses.
    [[nodiscard]] bool is_loopback() const noexcept {
        if (is_ipv4())
            return ipv4_octets()[0] == 127;
        if (is_ipv6()) {
            const auto o = ipv6_octets();
            static constexpr std::array<std::uint8_t, 16> loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                                   0, 0, 0, 0, 0, 0, 0, 1};
            static constexpr std::array<std::uint8_t, 12> v4_mapped{0, 0, 0, 0, 0,    0,
                                                                    0, 0, 0, 0, 0xff, 0xff};
            return o == loopback ||
                   (std::equal(v4_mapped.begin(), v4_mapped.end(), o.begin()) && o[12] == 127);
        }
        return false;
    }
    /// True for the IP wildcard addresses 0.0.0.0 and :: (what `ipv4_any` / `ipv6_any` build).
    /// False for Unix-domain addresses and for the default-constructed value (test
    /// `family() == address_family::unspecified` for that).
    [[nodiscard]] bool is_unspecified() const noexcept {
        if (is_ipv4())
            return ipv4_octets() == std::array<std::uint8_t, 4>{};
        if (is_ipv6())
            return ipv6_octets() == std::array<std::uint8_t, 16>{};
        return false;
    }

    /// A Unix-domain address of a socket that was never bound.
    [[nodiscard]] bool is_unnamed() const noexcept {
        return is_unix() && size_ == static_cast<socklen_t>(sun_path_offset);
    }
    /// A Unix-domain address in the Linux abstract namespace.
    [[nodiscard]] bool is_abstract() const noexcept {
        return is_unix() && size_ > static_cast<socklen_t>(sun_path_offset) &&
               addr_.un.sun_path[0] == '\0';
    }
    /// The Unix-domain path: "/tmp/x.sock", or "@name" for an abstract address (the name's bytes
    /// after the '@', NULs included). Empty for an unnamed address and for other families.
    [[nodiscard]] std::string path() const {
        const std::string_view name = unix_name();
        if (name.empty())
            return {};
        if (name.front() == '\0') {
            std::string out(name);
            out.front() = '@';
            return out;
        }
        return std::string(name);
    }

    /// "1.2.3.4:80", "[::1]:80", "[fe80::1%2]:80" (numeric scope id, only when non-zero),
    /// "/tmp/x.sock", "@abstract", "(unnamed)", "(unspecified)".
    [[nodiscard]] std::string to_string() const {
        char buf[INET6_ADDRSTRLEN] = {};
        switch (family()) {
        case address_family::ipv4:
            ::inet_ntop(AF_INET, &addr_.v4.sin_addr, buf, sizeof(buf));
            return fmt::format("{}:{}", buf, port());
        case address_family::ipv6:
            ::inet_ntop(AF_INET6, &addr_.v6.sin6_addr, buf, sizeof(buf));
            if (scope_id() != 0)
                return fmt::format("[{}%{}]:{}", buf, scope_id(), port());
            return fmt::format("[{}]:{}", buf, port());
        case address_family::unix_domain:
            return is_unnamed() ? std::string("(unnamed)") : path();
        case address_family::unspecified:
            break;
        }
        return "(unspecified)";
    }

    // ---- system-call interface ------------------------------------------------------------

    /// For `bind`, `connect`, `sendto`: the address and its length (`native_size()`).
    [[nodiscard]] const sockaddr* native() const noexcept { return &addr_.base; }
    [[nodiscard]] socklen_t native_size() const noexcept { return size_; }

    /// For calls that fill an address (`accept`, `recvfrom`, `getsockname`): pass
    /// `native_buffer()` and a `socklen_t` set to `native_capacity()`, then call
    /// `set_native_size` with what the kernel returned. `family()` and every observer then
    /// reflect what the kernel wrote.
    [[nodiscard]] sockaddr* native_buffer() noexcept { return &addr_.base; }
    static constexpr socklen_t native_capacity() noexcept { return sizeof(sockaddr_storage); }
    /// Sets the valid length after the kernel filled `native_buffer()`. A length above
    /// `native_capacity()` (the kernel reports the full size of a truncated address) is clamped.
    void set_native_size(socklen_t size) noexcept { size_ = std::min(size, native_capacity()); }

    friend bool operator==(const socket_address& a, const socket_address& b) noexcept {
        const address_family f = a.family();
        if (f != b.family())
            return false;
        switch (f) {
        case address_family::ipv4:
            return a.addr_.v4.sin_port == b.addr_.v4.sin_port &&
                   std::memcmp(&a.addr_.v4.sin_addr, &b.addr_.v4.sin_addr,
                               sizeof(a.addr_.v4.sin_addr)) == 0;
        case address_family::ipv6:
            return a.addr_.v6.sin6_port == b.addr_.v6.sin6_port &&
                   a.addr_.v6.sin6_scope_id == b.addr_.v6.sin6_scope_id &&
                   std::memcmp(&a.addr_.v6.sin6_addr, &b.addr_.v6.sin6_addr,
                               sizeof(a.addr_.v6.sin6_addr)) == 0;
        case address_family::unix_domain:
            return a.unix_name() == b.unix_name();
        case address_family::unspecified:
            break;
        }
        return true;
    }

    friend std::ostream& operator<<(std::ostream& os, const socket_address& a) {
        return os << a.to_string();
    }

private:
    static constexpr std::size_t sun_path_offset = offsetof(sockaddr_un, sun_path);

    /// The bytes of `sun_path` that name a Unix-domain address: a pathname up to (not including)
    /// its NUL, an abstract name including its leading NUL, empty when unnamed or not AF_UNIX.
    [[nodiscard]] std::string_view unix_name() const noexcept {
        if (!is_unix() || size_ <= static_cast<socklen_t>(sun_path_offset))
            return {};
        const char* p = addr_.un.sun_path;
        const std::size_t n =
            std::min(static_cast<std::size_t>(size_) - sun_path_offset, sizeof(addr_.un.sun_path));
        if (p[0] == '\0')
            return {p, n};
        return {p, ::strnlen(p, n)};
    }

    static result<socket_address> parse_ipv4(std::string_view text, std::uint16_t port) noexcept {
        char buf[INET_ADDRSTRLEN] = {}; // inet_pton needs a terminated string
        in_addr addr{};
        if (text.size() >= sizeof(buf) || text.find('\0') != std::string_view::npos)
            return detail::invalid_address();
        std::memcpy(buf, text.data(), text.size());
        if (::inet_pton(AF_INET, buf, &addr) != 1)
            return detail::invalid_address();
        std::array<std::uint8_t, 4> octets{};
        std::memcpy(octets.data(), &addr, octets.size());
        return ipv4(octets, port);
    }

    static result<socket_address> parse_ipv6(std::string_view text, std::uint16_t port) noexcept {
        std::uint32_t scope = 0;
        const std::size_t percent = text.find('%');
        if (percent != std::string_view::npos) {
            const std::string_view zone = text.substr(percent + 1);
            text = text.substr(0, percent);
            if (zone.empty())
                return detail::invalid_address();
            const char* const end = zone.data() + zone.size();
            const auto [ptr, ec] = std::from_chars(zone.data(), end, scope, 10);
            if (ec != std::errc() || ptr != end) {
                // Not a number: an interface name, resolved to its index now.
                char name[IF_NAMESIZE] = {};
                if (zone.size() >= sizeof(name) || zone.find('\0') != std::string_view::npos)
                    return detail::invalid_address();
                std::memcpy(name, zone.data(), zone.size());
                scope = ::if_nametoindex(name);
                if (scope == 0)
                    return detail::invalid_address();
            }
        }
        char buf[INET6_ADDRSTRLEN] = {}; // inet_pton needs a terminated string
        in6_addr addr{};
        if (text.size() >= sizeof(buf) || text.find('\0') != std::string_view::npos)
            return detail::invalid_address();
        std::memcpy(buf, text.data(), text.size());
        if (::inet_pton(AF_INET6, buf, &addr) != 1)
            return detail::invalid_address();
        std::array<std::uint8_t, 16> octets{};
        std::memcpy(octets.data(), &addr, octets.size());
        return ipv6(octets, port, scope);
    }

    // SAFETY: every member is a C sockaddr structure that starts with the same `sa_family_t`
    // member, so reading the family through `storage` is always defined (common initial
    // sequence). The other members are read only after `family()` named them, i.e. they are the
    // structure that was written, by this class or by the kernel through `native_buffer()`;
    // GCC and Clang define union punning for the kernel-filled case.
    union storage {
        sockaddr_storage storage; // first: `addr_{}` zeroes the whole union
        sockaddr base;
        sockaddr_in v4;
        sockaddr_in6 v6;
        sockaddr_un un;
    };
    storage addr_;
    socklen_t size_;
};

static_assert(std::is_trivially_copyable_v<socket_address>);
static_assert(sizeof(sockaddr_un) <= sizeof(sockaddr_storage));

/// The local address of socket `fd` (`getsockname`). Errors: the call's errno, in
/// `std::system_category()`.
inline result<socket_address> local_address_of(int fd) noexcept {
    socket_address a;
    socklen_t len = socket_address::native_capacity();
    if (::getsockname(fd, a.native_buffer(), &len) != 0)
        return last_system_error();
    a.set_native_size(len);
    return a;
}

/// The address of the peer socket `fd` is connected to (`getpeername`). Errors: the call's
/// errno, in `std::system_category()` (ENOTCONN for an unconnected socket).
inline result<socket_address> peer_address_of(int fd) noexcept {
    socket_address a;
    socklen_t len = socket_address::native_capacity();
    if (::getpeername(fd, a.native_buffer(), &len) != 0)
        return last_system_error();
    a.set_native_size(len);
    return a;
}

} // namespace eddy::net

/// `fmt::format("{}", addr)` gives `addr.to_string()`; string format specs apply (`{:>24}`).
template <>
struct fmt::formatter<eddy::net::socket_address> : fmt::formatter<std::string_view> {
    template <class FormatContext>
    auto format(const eddy::net::socket_address& a, FormatContext& ctx) const
        -> decltype(ctx.out()) {
        const std::string text = a.to_string();
        return fmt::formatter<std::string_view>::format(std::string_view(text), ctx);
    }
};
