#pragma once
//! `datagram_socket`: the operations `udp_socket` and `unix_datagram` share. Public through
//! those two types only; the protected part is what their factories and options are built from.
//!
//! One receive path and one send path serve every operation:
//!  - `receive` is a `recvmsg` with MSG_TRUNC, so the kernel reports the datagram's real length
//!    (Linux: UDP, and AF_UNIX datagrams since 3.4). A length above the buffer's size becomes
//!    `std::errc::message_size`. The sender's address, when asked for, is written by the kernel
//!    straight into a `socket_address` in the caller's frame.
//!  - `transmit` is a `sendmsg` (MSG_NOSIGNAL) to the given address, or to the connected peer.
//!
//! Epoll readiness. The driver keeps its `error` bit for the life of the registration: right for
//! a stream, whose errors are final, but a datagram socket's errors are transient (an ICMP "port
//! unreachable" sets one ECONNREFUSED, which the next call takes and clears). An operation that
//! waited on `ready::read_interest` (which includes `error`) would find that stale bit set
//! forever after and retry its system call in a loop without ever suspending. So these operations
//! wait on `readable | read_closed` and `writable | write_closed`: an EPOLLERR event also sets
//! `readable` and `writable` (epoll_driver's `bits_of`), so an error still wakes them, and
//! `clear_ready` can clear what they wait for.
//!
//! Lifetime: an operation refers to the socket and to the caller's buffer; both must outlive it
//! (await it before moving, closing or destroying the socket). Operations on one socket may run
//! at the same time in different tasks, on any workers.

#include <eddy/config.hpp>

#include <eddy/net/socket_address.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/epoll_driver.hpp>
#include <eddy/detail/io/ops.hpp>
#include <eddy/detail/io/source.hpp>

#include <liburing.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include <sys/socket.h>
#include <sys/uio.h>

namespace eddy::net::detail {

/// Readiness a datagram operation waits for on epoll (see the module comment for why `error` is
/// left out).
inline constexpr std::uint32_t datagram_read_interest =
    eddy::detail::ready::readable | eddy::detail::ready::read_closed;
inline constexpr std::uint32_t datagram_write_interest =
    eddy::detail::ready::writable | eddy::detail::ready::write_closed;

inline std::error_code errno_code(int errno_value) noexcept {
    return {errno_value, std::system_category()};
}

/// A ready task that fails with `ec` (for argument errors found before any I/O).
inline task<result<std::size_t>> failed(std::error_code ec) {
    co_return ec;
}

class datagram_socket {
public:
    /// A socket that is not open: every operation fails with EBADF.
    datagram_socket() noexcept = default;
    datagram_socket(datagram_socket&&) noexcept = default;
    datagram_socket& operator=(datagram_socket&&) noexcept = default;
    datagram_socket(const datagram_socket&) = delete;
    datagram_socket& operator=(const datagram_socket&) = delete;
    ~datagram_socket() = default;

    [[nodiscard]] bool is_open() const noexcept { return src_.is_open(); }
    /// The file descriptor (-1 once closed). Still owned by the socket.
    [[nodiscard]] int native_handle() const noexcept { return src_.fd(); }

    /// Sets the default peer: `send` and `recv` then talk to `peer` only (the kernel drops
    /// datagrams from other sources), and errors the peer reports (ECONNREFUSED) come back from
    /// later operations. A datagram connect exchanges nothing, so it does not suspend. May be
    /// called again to change peers.
    result<void> connect(const socket_address& peer) noexcept {
        if (::connect(src_.fd(), peer.native(), peer.native_size()) != 0)
            return last_system_error();
        return {};
    }

    /// Sends one datagram to the connected peer: the number of bytes sent (all of them).
    /// EDESTADDRREQ (UDP) or ENOTCONN (Unix) if not connected, EMSGSIZE if too large for the
    /// protocol.
    task<result<std::size_t>> send(std::span<const std::byte> buf) {
        return transmit(buf, socket_address());
    }
    task<result<std::size_t>> send(std::string_view text) {
        return send(std::as_bytes(std::span(text)));
    }

    /// Sends one datagram to `target` (copied: it need not outlive the call). An unspecified
    /// (default-constructed) target fails with EDESTADDRREQ.
    task<result<std::size_t>> send_to(std::span<const std::byte> buf,
                                      const socket_address& target) {
        if (target.native_size() == 0)
            return failed(errno_code(EDESTADDRREQ));
        return transmit(buf, target);
    }
    task<result<std::size_t>> send_to(std::string_view text, const socket_address& target) {
        return send_to(std::as_bytes(std::span(text)), target);
    }

    /// Receives one datagram (from the connected peer, if connected): its length. 0 is an empty
    /// datagram, not end of stream. A datagram longer than `buf` fails with
    /// `std::errc::message_size` (EMSGSIZE); it is consumed, and `buf` holds its first bytes.
    task<result<std::size_t>> recv(std::span<std::byte> buf) { return receive(buf, 0, nullptr); }

    /// `recv`, plus the sender's address.
    task<result<std::pair<std::size_t, socket_address>>> recv_from(std::span<std::byte> buf) {
        return receive_from(buf, 0);
    }

    /// `recv` without consuming: the datagram stays queued for the next receive. A datagram
    /// longer than `buf` fails with `std::errc::message_size` and stays queued too.
    task<result<std::size_t>> peek(std::span<std::byte> buf) {
        return receive(buf, MSG_PEEK, nullptr);
    }

    /// `recv_from` without consuming (see `peek`).
    task<result<std::pair<std::size_t, socket_address>>> peek_from(std::span<std::byte> buf) {
        return receive_from(buf, MSG_PEEK);
    }

    /// The address the socket is bound to (`getsockname`).
    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(src_.fd());
    }
    /// The connected peer's address (`getpeername`); ENOTCONN if not connected.
    [[nodiscard]] result<socket_address> peer_address() const noexcept {
        return peer_address_of(src_.fd());
    }

    /// Closes the socket now (the destructor does it otherwise). Operations started afterwards
    /// fail with EBADF. Not while an operation of this socket is in flight: await or cancel it
    /// first.
    result<void> close() noexcept { return src_.close(); }

protected:
    explicit datagram_socket(eddy::detail::io_source src) noexcept : src_(std::move(src)) {}

    /// A new datagram socket of `domain`, bound to `local`. Throws `std::logic_error` outside a
    /// runtime.
    static result<eddy::detail::io_source> open_bound(int domain, const socket_address& local) {
        auto src = eddy::detail::io_source::open_socket(domain, SOCK_DGRAM, 0);
        if (src && ::bind(src->fd(), local.native(), local.native_size()) != 0)
            return last_system_error(); // src closes the fd
        return src;
    }

    /// `connect(*peer)`, or the error of parsing the peer's address.
    result<void> connect_to(const result<socket_address>& peer) noexcept {
        if (!peer)
            return peer.error();
        return connect(*peer);
    }

    result<void> set_option(int level, int name, int value) noexcept {
        if (::setsockopt(src_.fd(), level, name, &value, sizeof value) != 0)
            return last_system_error();
        return {};
    }

    [[nodiscard]] result<int> option(int level, int name) const noexcept {
        int value = 0;
        socklen_t len = sizeof value;
        if (::getsockopt(src_.fd(), level, name, &value, &len) != 0)
            return last_system_error();
        return value;
    }

private:
    /// Sends `buf` as one datagram to `target`, or to the connected peer when `target` is
    /// unspecified. `target` is a copy in this frame: the kernel may read it until completion.
    task<result<std::size_t>> transmit(std::span<const std::byte> buf, socket_address target) {
        iovec iov{const_cast<std::byte*>(buf.data()), buf.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (target.native_size() != 0) {
            msg.msg_name = const_cast<sockaddr*>(target.native());
            msg.msg_namelen = target.native_size();
        }
        const int fd = src_.fd();
        const msghdr* m = &msg;
        auto op = eddy::detail::perform(
            src_, datagram_write_interest,
            [fd, m] {
                return eddy::detail::count_or_errno(::sendmsg(fd, m, MSG_NOSIGNAL | MSG_DONTWAIT));
            },
            [fd, m](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, m, MSG_NOSIGNAL); });
        co_return co_await op;
    }

    /// Receives one datagram into `buf` with `flags` (0 or MSG_PEEK); the sender's address goes
    /// to `*from` when `from` is not null (it must live until completion: the caller's frame).
    task<result<std::size_t>> receive(std::span<std::byte> buf, int flags, socket_address* from) {
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        const socklen_t name_capacity = from != nullptr ? socket_address::native_capacity() : 0;
        if (from != nullptr)
            msg.msg_name = from->native_buffer();
        const int fd = src_.fd();
        msghdr* m = &msg;
        const int all_flags = flags | MSG_TRUNC;
        auto op = eddy::detail::perform(
            src_, datagram_read_interest,
            [fd, m, all_flags, name_capacity] {
                m->msg_namelen = name_capacity; // in-out: reset for every attempt
                return eddy::detail::count_or_errno(::recvmsg(fd, m, all_flags | MSG_DONTWAIT));
            },
            [fd, m, all_flags, name_capacity](io_uring_sqe* sqe) {
                m->msg_namelen = name_capacity;
                io_uring_prep_recvmsg(sqe, fd, m, static_cast<unsigned>(all_flags));
            });
        auto r = co_await op;
        if (!r)
            co_return r;
        if (*r > buf.size())
            co_return errno_code(EMSGSIZE);
        if (from != nullptr) {
            // Linux reports no address (length 0) for a Unix-domain sender that never bound.
            if (msg.msg_namelen == 0)
                *from = socket_address::unix_unnamed();
            else
                from->set_native_size(msg.msg_namelen);
        }
        co_return r;
    }

    task<result<std::pair<std::size_t, socket_address>>> receive_from(std::span<std::byte> buf,
                                                                      int flags) {
        socket_address from;
        auto r = co_await receive(buf, flags, &from);
        if (!r)
            co_return r.error();
        co_return std::pair{*r, from};
    }

    eddy::detail::io_source src_;
};

} // namespace eddy::net::detail
