#pragma once
//! What every connected stream socket (TCP, Unix) and its split halves share: the read and write
//! operations as mixins over an `io_source`, and the socket-level helpers listeners use.
//!
//! `stream_reader<D>` / `stream_writer<D>` give `D` (which provides `source()`) the operations;
//! their awaitables follow detail/io/ops.hpp: cancel-safe, with the backend caveat stated there.
//! `read_exact` and `write_all` loop over partial transfers; cancelled midway, the bytes already
//! moved are gone (the caller cannot tell how many): use `read`/`write` when that matters.

#include <eddy/config.hpp>

#include <eddy/net/socket_address.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/accept_queue.hpp>
#include <eddy/detail/io/ops.hpp>
#include <eddy/detail/io/source.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace eddy::detail {

/// `read_exact` and `write_all`: one call usually moves the whole buffer, so the first transfer
/// is an `io_operation` awaited in place; only a short transfer (or one that has to wait)
/// continues in a coroutine that loops until the buffer is done.
template <bool Reading>
auto stream_transfer(io_source& s, std::byte* data, std::size_t size) {
    if constexpr (Reading)
        return detail::recv(s, data, size, 0, socket_kind::stream);
    else
        return detail::send(s, data, size, 0, socket_kind::stream);
}

template <bool Reading>
class [[nodiscard]] exact_transfer {
    using transfer = decltype(stream_transfer<Reading>(std::declval<io_source&>(), nullptr, 0));

public:
    exact_transfer(io_source& s, std::byte* data, std::size_t size) noexcept
        : s_(s), data_(data), size_(size), first_(stream_transfer<Reading>(s, data, size)) {}

    bool await_ready() {
        if (size_ == 0)
            return true;
        if (!first_.await_ready())
            return false;
        return settle(first_.await_resume());
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
        rest_ = finish(s_, data_, size_, done_, std::move(first_), !settled_);
        rest_awaiter_ = std::move(rest_).operator co_await();
        return rest_awaiter_.await_suspend(h);
    }

    result<void> await_resume() {
        if (rest_.valid())
            return rest_awaiter_.await_resume();
        return outcome_;
    }

private:
    /// Adds a transfer's count to `done`: the whole operation's outcome once it has one (an
    /// error, the end of the stream while reading, or `size` bytes done).
    static std::optional<result<void>> count(const result<std::size_t>& r, std::size_t& done,
                                             std::size_t size) {
        if (!r)
            return result<void>(r.error());
        if (Reading && *r == 0)
            return result<void>(errc::unexpected_eof);
        done += *r;
        if (done == size)
            return result<void>{};
        return std::nullopt;
    }

    bool settle(const result<std::size_t>& r) {
        settled_ = true;
        std::optional<result<void>> o = count(r, done_, size_);
        if (o)
            outcome_ = *o;
        return o.has_value();
    }

    /// The rest of the transfer: awaits `first` when it has not completed yet (`pending`), then
    /// loops from `done` (less than `size`).
    static task<result<void>> finish(io_source& s, std::byte* data, std::size_t size,
                                     std::size_t done, transfer first, bool pending) {
        if (pending) {
            auto r = co_await first;
            if (auto o = count(r, done, size))
                co_return *o;
        }
        for (;;) {
            auto next = stream_transfer<Reading>(s, data + done, size - done);
            auto r = co_await next;
            if (auto o = count(r, done, size))
                co_return *o;
        }
    }

    io_source& s_;
    std::byte* data_;
    std::size_t size_;
    std::size_t done_ = 0;
    bool settled_ = false;
    result<void> outcome_{};
    transfer first_;
    task<result<void>> rest_;
    typename task<result<void>>::awaiter rest_awaiter_{};
};

template <class D>
class stream_reader {
public:
    /// Reads what is available (at least one byte), waiting if nothing is. 0 means the peer
    /// closed its side (end of stream). An awaitable of `result<std::size_t>` (an
    /// `io_operation`).
    auto read(std::span<std::byte> buf) {
        return detail::recv(self().source(), buf.data(), buf.size(), 0, socket_kind::stream);
    }
    auto read(void* buf, std::size_t len) {
        return detail::recv(self().source(), buf, len, 0, socket_kind::stream);
    }

    /// Fills `buf` completely; `errc::unexpected_eof` when the stream ends first. An awaitable
    /// of `result<void>`.
    exact_transfer<true> read_exact(std::span<std::byte> buf) {
        return exact_transfer<true>(self().source(), buf.data(), buf.size());
    }

    /// Like `read`, but leaves the bytes in the socket for the next read (MSG_PEEK).
    auto peek(std::span<std::byte> buf) {
        return detail::recv(self().source(), buf.data(), buf.size(), MSG_PEEK);
    }

    /// Waits until the socket has something to read (data, end of stream or an error) without
    /// reading it. With `try_read`, this lets a task hold no buffer while it waits: many idle
    /// connections then cost no buffer memory each. Cancel-safe.
    task<result<void>> readable() {
        return detail::wait_ready(self().source(), ready::read_interest);
    }

    /// Reads what is available now without waiting: `std::errc::operation_would_block` when
    /// there is nothing (wait with `readable()` and try again), 0 at end of stream.
    result<std::size_t> try_read(std::span<std::byte> buf) noexcept {
        const int fd = self().source().fd();
        return detail::try_transfer(self().source(), ready::read_interest, [&] {
            return count_or_errno(::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT));
        });
    }

private:
    D& self() noexcept { return static_cast<D&>(*this); }
};

template <class D>
class stream_writer {
public:
    /// Writes some of `buf` (at least one byte), waiting for room if there is none. An awaitable
    /// of `result<std::size_t>` (an `io_operation`).
    auto write(std::span<const std::byte> buf) {
        return detail::send(self().source(), buf.data(), buf.size(), 0, socket_kind::stream);
    }
    auto write(const void* buf, std::size_t len) {
        return detail::send(self().source(), buf, len, 0, socket_kind::stream);
    }

    /// Writes all of `buf`. A peer that closed gives EPIPE or ECONNRESET (never SIGPIPE). An
    /// awaitable of `result<void>`.
    exact_transfer<false> write_all(std::span<const std::byte> buf) {
        return exact_transfer<false>(self().source(), const_cast<std::byte*>(buf.data()),
                                     buf.size());
    }
    exact_transfer<false> write_all(std::string_view text) {
        return write_all(std::as_bytes(std::span<const char>(text.data(), text.size())));
    }

    /// Waits until the socket can take more data (or has failed) without writing. Cancel-safe.
    task<result<void>> writable() {
        return detail::wait_ready(self().source(), ready::write_interest);
    }

    /// Writes what fits now without waiting: `std::errc::operation_would_block` when the send
    /// buffer is full (wait with `writable()` and try again). Never SIGPIPE.
    result<std::size_t> try_write(std::span<const std::byte> buf) noexcept {
        const int fd = self().source().fd();
        return detail::try_transfer(self().source(), ready::write_interest, [&] {
            return count_or_errno(::send(fd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL));
        });
    }

    /// Gathers several buffers into one send; returns how many bytes went (possibly fewer than
    /// all). The spans' memory must stay valid until it completes.
    task<result<std::size_t>> write_vectored(std::span<const std::span<const std::byte>> bufs) {
        std::vector<iovec> iov;
        iov.reserve(bufs.size());
        for (const auto& b : bufs)
            iov.push_back(iovec{const_cast<std::byte*>(b.data()), b.size()});
        co_return co_await detail::send_vectored(self().source(), iov.data(), iov.size());
    }

    /// Shuts down the writing direction: the peer reads end of stream once it has read
    /// everything sent before.
    result<void> shutdown_write() noexcept {
        if (::shutdown(self().source().fd(), SHUT_WR) < 0)
            return last_system_error();
        return {};
    }

private:
    D& self() noexcept { return static_cast<D&>(*this); }
};

/// setsockopt of an int option.
inline result<void> set_int_option(int fd, int level, int name, int value) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof value) < 0)
        return last_system_error();
    return {};
}

inline result<int> get_int_option(int fd, int level, int name) noexcept {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, level, name, &value, &len) < 0)
        return last_system_error();
    return value;
}

/// A listening socket for `addr` in the current runtime (SO_REUSEADDR for IP).
inline result<io_source> listen_on(const net::socket_address& addr, int backlog) {
    const int domain = addr.native()->sa_family;
    if (addr.family() == net::address_family::unspecified)
        return std::make_error_code(std::errc::invalid_argument);
    auto s = io_source::open_socket(domain, SOCK_STREAM, 0);
    if (!s)
        return s.error();
    if (domain != AF_UNIX) {
        if (auto r = set_int_option(s->fd(), SOL_SOCKET, SO_REUSEADDR, 1); !r)
            return r.error();
    }
    if (::bind(s->fd(), addr.native(), addr.native_size()) < 0)
        return last_system_error();
    if (::listen(s->fd(), backlog) < 0)
        return last_system_error();
    return s;
}

/// Accepts one connection on `listener`: the connected socket and the peer's address. Errors
/// such as EMFILE/ENFILE (out of fds) are returned; the listener stays usable.
inline task<result<std::pair<io_source, net::socket_address>>> accept_on(io_source& listener) {
    net::socket_address peer;
    socklen_t len = net::socket_address::native_capacity();
    auto r = co_await detail::accept(listener, peer.native_buffer(), &len);
    if (!r)
        co_return r.error();
    peer.set_native_size(len);
    auto s = io_source::adopt(static_cast<int>(*r));
    if (!s)
        co_return s.error();
    co_return std::pair<io_source, net::socket_address>(std::move(*s), peer);
}

/// A listening socket: one-shot accepts on epoll, a multishot accept (detail/io/accept_queue.hpp)
/// on io_uring. Shared by the TCP and Unix listeners.
class listener_source {
public:
    listener_source() noexcept = default;
    explicit listener_source(io_source s)
        : source_(std::move(s)),
          queue_(source_.is_open() && source_.completion_based()
                     ? std::make_unique<accept_queue>(source_.uring(), source_.fd())
                     : nullptr) {}
    listener_source(listener_source&&) noexcept = default;
    listener_source& operator=(listener_source&& other) noexcept {
        if (this != &other) {
            queue_.reset();
            source_ = std::move(other.source_);
            queue_ = std::move(other.queue_);
        }
        return *this;
    }
    ~listener_source() { queue_.reset(); } // before the fd closes

    task<result<std::pair<io_source, net::socket_address>>> accept() {
        if (!source_.is_open())
            co_return std::error_code(EBADF, std::system_category());
        if (!queue_ || source_.driver().is_shut_down())
            co_return co_await accept_on(source_);
        for (;;) {
            if (std::optional<int> r = queue_->try_take()) {
                if (*r < 0)
                    co_return std::error_code(-*r, std::system_category());
                auto s = io_source::adopt(*r);
                if (!s)
                    co_return s.error();
                auto peer = net::peer_address_of(s->fd());
                co_return std::pair<io_source, net::socket_address>(
                    std::move(*s), peer ? *peer : net::socket_address());
            }
            if (queue_->unsupported())
                co_return co_await accept_on(source_);
            co_await queue_->ready();
        }
    }

    result<void> close() noexcept {
        queue_.reset();
        return source_.close();
    }

    [[nodiscard]] io_source& source() noexcept { return source_; }
    [[nodiscard]] const io_source& source() const noexcept { return source_; }

private:
    io_source source_;
    std::unique_ptr<accept_queue> queue_; ///< io_uring only (several tasks may accept at once)
};

/// A socket of `addr`'s family connected to it.
inline task<result<io_source>> connect_to(net::socket_address addr) {
    if (addr.family() == net::address_family::unspecified)
        co_return std::make_error_code(std::errc::invalid_argument);
    auto s = io_source::open_socket(addr.native()->sa_family, SOCK_STREAM, 0);
    if (!s)
        co_return s.error();
    auto r = co_await detail::connect(*s, addr.native(), addr.native_size());
    if (!r)
        co_return r.error();
    co_return std::move(*s);
}

} // namespace eddy::detail
