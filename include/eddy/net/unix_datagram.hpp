#pragma once
//! `eddy::net::unix_datagram`: a Unix-domain datagram socket (AF_UNIX, SOCK_DGRAM) whose sends
//! and receives suspend the task instead of blocking the thread.
//!
//! ```cpp
//! auto [a, b] = eddy::net::unix_datagram::pair().value();             // connected to each other
//! auto sent = co_await a.send("ping");                                 // result<size_t>
//! std::array<std::byte, 256> buf;
//! auto n = co_await b.recv(buf);                                       // result<size_t>: 4
//!
//! auto server = eddy::net::unix_datagram::bind("/run/app.sock");       // result<unix_datagram>
//! auto client = eddy::net::unix_datagram::unbound();
//! auto r = co_await client->send_to("hello", "/run/app.sock");
//! auto got = co_await server->recv_from(buf);                          // from: "(unnamed)"
//! ```
//!
//! - Addresses are `socket_address`es of the Unix family, or their text: a path
//!   ("/run/app.sock", relative paths too), or "@name" for the Linux abstract namespace (no file;
//!   the name disappears with the last socket bound to it). A sender that never bound shows up
//!   in `recv_from` as the unnamed address (`is_unnamed()`), which cannot be replied to.
//! - `bind(path)` creates the socket file; it fails with EADDRINUSE if the path exists (remove a
//!   stale file first), and the file stays after the socket closes (remove it yourself).
//!   `bind`, `unbound`, `pair` and `connect` are plain calls returning `result`: none of them
//!   waits for anything.
//! - The operations and their rules are `udp_socket`'s (see eddy/net/udp.hpp): one whole
//!   datagram per call; a datagram longer than the receive buffer fails with
//!   `std::errc::message_size` (consumed by `recv`, left queued by `peek`). A send suspends
//!   while the sender's buffer (SO_SNDBUF) or the receiver's queue (net.unix.max_dgram_qlen)
//!   is full: Unix datagrams are flow-controlled, never dropped, unlike UDP. A receive on a socket
//!   whose peer closed keeps waiting: datagrams have no end of stream.
//! - Errors are `std::error_code`s in `std::system_category()`: ENOENT or ECONNREFUSED for a path
//!   nobody is bound to (no file / a file but no socket), ECONNREFUSED once the connected peer
//!   closed, EMSGSIZE (see above), ENOTCONN for `send` on an unconnected socket (and from
//!   `peer_address`), EBADF after `close()`; `std::errc::invalid_argument` or
//!   `filename_too_long` for a path `socket_address::unix_path` rejects; `errc::shutdown` once the
//!   runtime is gone. Creating a socket outside a runtime throws `std::logic_error`.
//!
//! Cancel-safety, as for `udp_socket`: a cancelled `recv`/`recv_from` loses nothing on epoll; on
//! io_uring a datagram the kernel delivered just before the cancellation took effect is lost.
//! `peek`/`peek_from` lose nothing. A cancelled send sent nothing on epoll, and may have sent
//! its whole datagram on io_uring. The socket stays usable.
//!
//! Thread safety: as `udp_socket`: concurrent operations from several tasks are fine; the socket
//! and the buffers must outlive every operation in flight.

#include <eddy/config.hpp>

#include <eddy/net/detail/datagram.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/source.hpp>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>

#include <sys/socket.h>
#include <unistd.h>

namespace eddy::net {

class unix_datagram : public detail::datagram_socket {
public:
    /// A socket that is not open (every operation fails with EBADF); assign an open one to it.
    unix_datagram() noexcept = default;

    /// A socket bound to `path` ("/dir/name" or "@abstract-name"; see the header comment).
    static result<unix_datagram> bind(std::string_view path) {
        auto a = socket_address::unix_path(path);
        if (!a)
            return a.error();
        return bind(*a);
    }
    /// A socket bound to a Unix-family address (`unix_unnamed()` asks Linux to pick an abstract
    /// name). EAFNOSUPPORT for another family.
    static result<unix_datagram> bind(const socket_address& local) {
        if (!local.is_unix())
            return detail::errno_code(EAFNOSUPPORT);
        auto src = open_bound(AF_UNIX, local);
        if (!src)
            return src.error();
        return unix_datagram(std::move(*src));
    }

    /// A socket bound to no address, for sending: its datagrams arrive from the unnamed address,
    /// which cannot be answered (bind a socket that expects replies).
    static result<unix_datagram> unbound() {
        auto src = eddy::detail::io_source::open_socket(AF_UNIX, SOCK_DGRAM, 0);
        if (!src)
            return src.error();
        return unix_datagram(std::move(*src));
    }

    /// Two unnamed sockets connected to each other (`socketpair`).
    static result<std::pair<unix_datagram, unix_datagram>> pair() {
        (void)eddy::detail::current_io_driver(); // throws outside a runtime, before any fd exists
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) != 0)
            return last_system_error();
        auto a = eddy::detail::io_source::adopt(fds[0]);
        if (!a) {
            ::close(fds[1]);
            return a.error();
        }
        auto b = eddy::detail::io_source::adopt(fds[1]);
        if (!b)
            return b.error();
        return std::pair{unix_datagram(std::move(*a)), unix_datagram(std::move(*b))};
    }

    using datagram_socket::connect;
    /// `connect` to the socket bound at `path`.
    result<void> connect(std::string_view path) noexcept {
        return connect_to(socket_address::unix_path(path));
    }

    using datagram_socket::send_to;
    /// `send_to` the socket bound at `path` (checked before anything is sent).
    task<result<std::size_t>> send_to(std::span<const std::byte> buf, std::string_view path) {
        auto a = socket_address::unix_path(path);
        if (!a)
            return detail::failed(a.error());
        return send_to(buf, *a);
    }
    task<result<std::size_t>> send_to(std::string_view text, std::string_view path) {
        return send_to(std::as_bytes(std::span(text)), path);
    }

private:
    explicit unix_datagram(eddy::detail::io_source src) noexcept
        : datagram_socket(std::move(src)) {}
};

} // namespace eddy::net
