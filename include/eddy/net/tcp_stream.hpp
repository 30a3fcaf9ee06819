#pragma once
//! `eddy::net::tcp_stream`: a connected TCP socket.
//!
//! ```cpp
//! auto s = co_await
//! eddy::net::tcp_stream::connect(*eddy::net::socket_address::parse("127.0.0.1:7")); if (!s) {
//! fmt::print("connect: {}\n", s.error().message()); co_return; } co_await s->write_all("ping");
//! std::array<std::byte, 64> buf;
//! auto n = co_await s->read(buf);      // result<size_t>; 0 = the peer closed
//! ```
//!
//! Operations return `result<T>` with the system's codes (ECONNREFUSED, ECONNRESET, EPIPE; a
//! timed-out `connect` gives `errc::timed_out`, equal to `std::errc::timed_out`); they never
//! throw on these paths and never raise SIGPIPE. Each awaitable is cancel-safe as described in
//! eddy/detail/io/ops.hpp; `read_exact`/`write_all` cancelled midway lose track of the bytes
//! already moved. A stream is used by one task at a time; `split()` gives two halves for two.
//! Create streams inside a runtime; they keep working until that runtime shuts down (then
//! operations fail with `errc::shutdown`) and can be destroyed anywhere.

#include <eddy/config.hpp>

#include <eddy/net/lookup_host.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/net/split.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>

#include <eddy/detail/io/source.hpp>
#include <eddy/detail/net/stream.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace eddy::net {

class tcp_stream : public eddy::detail::stream_reader<tcp_stream>,
                   public eddy::detail::stream_writer<tcp_stream> {
public:
    tcp_stream() noexcept = default;
    explicit tcp_stream(eddy::detail::io_source s) noexcept : source_(std::move(s)) {}

    /// Connects to `addr`.
    static task<result<tcp_stream>> connect(socket_address addr) {
        auto s = co_await eddy::detail::connect_to(addr);
        if (!s)
            co_return s.error();
        co_return tcp_stream(std::move(*s));
    }

    /// Connects to `addr`, giving up with `errc::timed_out` after `limit`.
    static task<result<tcp_stream>> connect(socket_address addr, std::chrono::nanoseconds limit) {
        auto r = co_await eddy::timeout(limit, connect(addr));
        if (!r)
            co_return r.error();
        co_return std::move(*r);
    }

    /// Resolves "host:port" (see lookup_host) and connects to the first address that accepts.
    static task<result<tcp_stream>> connect(std::string host_and_port) {
        auto addrs = co_await lookup_host(std::move(host_and_port));
        if (!addrs)
            co_return addrs.error();
        std::error_code last = std::make_error_code(std::errc::host_unreachable);
        for (const socket_address& a : *addrs) {
            auto s = co_await connect(a);
            if (s)
                co_return std::move(*s);
            last = s.error();
        }
        co_return last;
    }

    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(source_.fd());
    }
    [[nodiscard]] result<socket_address> peer_address() const noexcept {
        return peer_address_of(source_.fd());
    }

    /// TCP_NODELAY: send small writes at once instead of coalescing them (Nagle).
    result<void> set_nodelay(bool on) noexcept {
        return eddy::detail::set_int_option(source_.fd(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
    }
    [[nodiscard]] result<bool> nodelay() const noexcept {
        auto v = eddy::detail::get_int_option(source_.fd(), IPPROTO_TCP, TCP_NODELAY);
        if (!v)
            return v.error();
        return *v != 0;
    }

    /// SO_KEEPALIVE; with `idle`, also the idle time before the first probe (TCP_KEEPIDLE).
    result<void> set_keepalive(bool on, std::chrono::seconds idle = std::chrono::seconds(0)) {
        if (auto r =
                eddy::detail::set_int_option(source_.fd(), SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
            !r)
            return r;
        if (on && idle.count() > 0) {
            return eddy::detail::set_int_option(source_.fd(), IPPROTO_TCP, TCP_KEEPIDLE,
                                                static_cast<int>(idle.count()));
        }
        return {};
    }
    [[nodiscard]] result<bool> keepalive() const noexcept {
        auto v = eddy::detail::get_int_option(source_.fd(), SOL_SOCKET, SO_KEEPALIVE);
        if (!v)
            return v.error();
        return *v != 0;
    }

    /// IP_TTL of outgoing packets.
    result<void> set_ttl(int ttl) noexcept {
        return eddy::detail::set_int_option(source_.fd(), IPPROTO_IP, IP_TTL, ttl);
    }

    /// Shuts down one or both directions (SHUT_RD, SHUT_WR, SHUT_RDWR).
    result<void> shutdown(int how = SHUT_WR) noexcept {
        if (::shutdown(source_.fd(), how) < 0)
            return last_system_error();
        return {};
    }

    /// Two halves usable from two tasks at once (see eddy/net/split.hpp).
    [[nodiscard]] std::pair<read_half, write_half> split() && {
        auto shared = std::make_shared<eddy::detail::io_source>(std::move(source_));
        return {read_half(shared), write_half(shared)};
    }

    /// The halves of one `split`, back together; nullopt (halves untouched) if they are not.
    static std::optional<tcp_stream> reunite(read_half& r, write_half& w) {
        if (!r.is_pair_of(w))
            return std::nullopt;
        std::shared_ptr<eddy::detail::io_source> shared = w.release();
        r = read_half(nullptr);
        if (shared.use_count() != 1)
            return std::nullopt; // cannot happen with exactly one read and one write half
        return tcp_stream(std::move(*shared));
    }

    /// Closes now (destruction does it too). Returns close()'s error.
    result<void> close() noexcept { return source_.close(); }

    [[nodiscard]] bool is_open() const noexcept { return source_.is_open(); }
    [[nodiscard]] int native_handle() const noexcept { return source_.fd(); }

    [[nodiscard]] eddy::detail::io_source& source() noexcept { return source_; }

private:
    eddy::detail::io_source source_;
};

} // namespace eddy::net
