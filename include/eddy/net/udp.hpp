#pragma once
//! `eddy::net::udp_socket`: a UDP socket (IPv4 or IPv6) whose sends and receives suspend the
//! task instead of blocking the thread.
//!
//! ```cpp
//! auto sock = eddy::net::udp_socket::bind("127.0.0.1:0");           // result<udp_socket>
//! std::array<std::byte, 1500> buf;
//! auto got = co_await sock->recv_from(buf);                          // result<pair<n, from>>
//! if (got)
//!     auto sent = co_await sock->send_to(std::span(buf).first(got->first), got->second);
//! ```
//!
//! - `bind` and `connect` are plain calls returning `result`, not awaitables: they take an
//!   address that is already resolved (resolve names first with `lookup_host`), and neither
//!   exchanges anything on the network, so there is nothing to wait for. (Tokio's are `async`
//!   only because they resolve names.) Both fail at once, with the system's error.
//! - `send`, `send_to`, `recv`, `recv_from`, `peek`, `peek_from` return `eddy::task<result<..>>`:
//!   a send suspends while the socket's send buffer is full, a receive until a datagram arrives.
//!   Each call sends or receives exactly one whole datagram.
//! - Truncation is an error, not silent: a datagram longer than the receive buffer fails with
//!   `std::errc::message_size` (EMSGSIZE). `recv`/`recv_from` consume it anyway (the buffer holds
//!   its first bytes); `peek`/`peek_from` leave it queued, so a larger buffer can take it. UDP
//!   payloads are at most 65,507 bytes (IPv4) or 65,527 (IPv6): a 64 KiB buffer never truncates.
//! - Errors are `std::error_code`s in `std::system_category()`: EMSGSIZE (see above, or a send
//!   larger than the protocol allows), ECONNREFUSED on a connected socket whose peer has no
//!   socket on that port (Linux reports the ICMP "port unreachable" to the next send or receive
//!   after it arrives, once), EDESTADDRREQ for `send` on an unconnected socket, ENOTCONN from
//!   `peer_address`, EAFNOSUPPORT for a non-IP address at `bind`, EBADF after `close()`.
//!   `errc::shutdown` once the runtime is gone. Creating a socket outside a runtime throws
//!   `std::logic_error`.
//!
//! Cancel-safety (an operation is cancelled when its task is aborted or shut down, or loses a
//! `select` or `timeout`):
//! - `recv`, `recv_from`: on epoll, cancel-safe: nothing is lost (a datagram is taken from the
//!   socket only by the system call that hands it to the task). On io_uring, a datagram the
//!   kernel delivered into the buffer just before the cancellation took effect is lost: it was
//!   consumed but never reported.
//! - `peek`, `peek_from`: cancel-safe on both backends (nothing is consumed).
//! - `send`, `send_to`: on epoll a cancelled send sent nothing; on io_uring the datagram may
//!   have been sent. Never part of a datagram.
//! In every case the cancelled operation leaves nothing registered and the socket stays usable.
//!
//! Thread safety: several tasks, on any workers, may use one socket at once (e.g. one sends
//! while another receives; concurrent receivers each get different datagrams). An operation
//! refers to the socket and to its buffer: both must outlive it, and the socket must not be
//! moved, closed or destroyed while an operation is in flight.

#include <eddy/config.hpp>

#include <eddy/net/detail/datagram.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/result.hpp>

#include <eddy/detail/io/source.hpp>

#include <cerrno>
#include <cstdint>
#include <string_view>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>

namespace eddy::net {

class udp_socket : public detail::datagram_socket {
public:
    /// A socket that is not open (every operation fails with EBADF); assign a bound one to it.
    udp_socket() noexcept = default;

    /// A socket bound to `local` (port 0: the system picks one; see `local_address`). IPv6
    /// sockets follow the system's IPV6_V6ONLY default (on Linux, [::] also receives IPv4).
    static result<udp_socket> bind(const socket_address& local) {
        if (!local.is_ipv4() && !local.is_ipv6())
            return detail::errno_code(EAFNOSUPPORT);
        auto src = open_bound(local.is_ipv4() ? AF_INET : AF_INET6, local);
        if (!src)
            return src.error();
        return udp_socket(std::move(*src));
    }
    /// `bind(socket_address::parse(address))`: a numeric "ip:port" ("0.0.0.0:9000", "[::1]:0");
    /// `std::errc::invalid_argument` for anything else (names: `lookup_host` first).
    static result<udp_socket> bind(std::string_view address) {
        auto a = socket_address::parse(address);
        if (!a)
            return a.error();
        return bind(*a);
    }

    using datagram_socket::connect;
    /// `connect(socket_address::parse(address))`: a numeric "ip:port".
    result<void> connect(std::string_view address) noexcept {
        return connect_to(socket_address::parse(address));
    }

    /// SO_BROADCAST: whether sending to a broadcast address is allowed (IPv4).
    result<void> set_broadcast(bool on) noexcept {
        return set_option(SOL_SOCKET, SO_BROADCAST, on ? 1 : 0);
    }
    [[nodiscard]] result<bool> broadcast() const noexcept {
        auto v = option(SOL_SOCKET, SO_BROADCAST);
        if (!v)
            return v.error();
        return *v != 0;
    }

    /// The hop limit of outgoing unicast datagrams: IP_TTL on an IPv4 socket,
    /// IPV6_UNICAST_HOPS on an IPv6 one. 1..255; EINVAL otherwise.
    result<void> set_ttl(std::uint32_t ttl) noexcept {
        auto [level, name] = ttl_option();
        if (ttl == 0 || ttl > 255)
            return detail::errno_code(EINVAL);
        return set_option(level, name, static_cast<int>(ttl));
    }
    [[nodiscard]] result<std::uint32_t> ttl() const noexcept {
        auto [level, name] = ttl_option();
        auto v = option(level, name);
        if (!v)
            return v.error();
        return static_cast<std::uint32_t>(*v);
    }

private:
    explicit udp_socket(eddy::detail::io_source src) noexcept : datagram_socket(std::move(src)) {}

    [[nodiscard]] std::pair<int, int> ttl_option() const noexcept {
        auto domain = option(SOL_SOCKET, SO_DOMAIN);
        if (domain && *domain == AF_INET6)
            return {IPPROTO_IPV6, IPV6_UNICAST_HOPS};
        return {IPPROTO_IP, IP_TTL};
    }
};

} // namespace eddy::net
