#pragma once
//! `eddy::net::tcp_listener`: accepts TCP connections.
//!
//! ```cpp
//! auto l = eddy::net::tcp_listener::bind(eddy::net::socket_address::ipv4_loopback(8080));
//! for (;;) {
//!     auto c = co_await l->accept();       // result<pair<tcp_stream, socket_address>>
//!     if (!c) { ... continue; }            // e.g. EMFILE: the listener keeps working
//!     eddy::spawn(serve(std::move(c->first)));
//! }
//! ```
//!
//! `accept` is cancel-safe: a cancelled accept takes no connection from the queue on epoll; on
//! io_uring a connection accepted by the kernel just before the cancel is closed, so its client
//! sees a reset. An EMFILE/ENFILE (out of file descriptors) is returned as an error; the pending
//! connection stays queued and the next accept after fds are freed takes it.

#include <eddy/config.hpp>

#include <eddy/net/socket_address.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/source.hpp>
#include <eddy/detail/net/stream.hpp>

#include <utility>

namespace eddy::net {

class tcp_listener {
public:
    tcp_listener() noexcept = default;

    /// Binds to `addr` (port 0 picks a free port: see `local_address`) and listens, with
    /// SO_REUSEADDR. Must be called inside a runtime.
    static result<tcp_listener> bind(const socket_address& addr, int backlog = 1024) {
        if (!addr.is_ipv4() && !addr.is_ipv6())
            return std::make_error_code(std::errc::address_family_not_supported);
        auto s = eddy::detail::listen_on(addr, backlog);
        if (!s)
            return s.error();
        return tcp_listener(std::move(*s));
    }

    /// Takes ownership of a socket that is already listening (inherited from a parent process,
    /// or made by another library) and puts it in the runtime's mode. Must be called inside a
    /// runtime; on failure the fd is closed.
    static result<tcp_listener> from_native(int fd) {
        auto s = eddy::detail::io_source::adopt(fd);
        if (!s)
            return s.error();
        return tcp_listener(std::move(*s));
    }

    /// Waits for a connection: the stream and the peer's address.
    task<result<std::pair<tcp_stream, socket_address>>> accept() {
        auto r = co_await source_.accept();
        if (!r)
            co_return r.error();
        co_return std::pair<tcp_stream, socket_address>(tcp_stream(std::move(r->first)), r->second);
    }

    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(source_.source().fd());
    }

    result<void> set_ttl(int ttl) noexcept {
        return eddy::detail::set_int_option(source_.source().fd(), IPPROTO_IP, IP_TTL, ttl);
    }

    result<void> close() noexcept { return source_.close(); }
    [[nodiscard]] bool is_open() const noexcept { return source_.source().is_open(); }
    [[nodiscard]] int native_handle() const noexcept { return source_.source().fd(); }

private:
    explicit tcp_listener(eddy::detail::io_source s) : source_(std::move(s)) {}

    eddy::detail::listener_source source_;
};

} // namespace eddy::net
