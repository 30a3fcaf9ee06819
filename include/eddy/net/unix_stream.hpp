#pragma once
//! `eddy::net::unix_stream`: a connected Unix-domain stream socket (a path, an abstract "@name",
//! or one end of `pair()`). The same operations, errors and cancellation rules as
//! `tcp_stream` (see eddy/net/tcp_stream.hpp).

#include <eddy/config.hpp>

#include <eddy/net/socket_address.hpp>
#include <eddy/net/split.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/source.hpp>
#include <eddy/detail/net/stream.hpp>

#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include <sys/socket.h>

namespace eddy::net {

class unix_stream : public eddy::detail::stream_reader<unix_stream>,
                    public eddy::detail::stream_writer<unix_stream> {
public:
    unix_stream() noexcept = default;
    explicit unix_stream(eddy::detail::io_source s) noexcept : source_(std::move(s)) {}

    /// Connects to the socket at `path` ("@name": the abstract namespace).
    static task<result<unix_stream>> connect(std::string_view path) {
        auto addr = socket_address::unix_path(path);
        if (!addr)
            return error_task(addr.error());
        return connect(*addr);
    }

    static task<result<unix_stream>> connect(socket_address addr) {
        if (!addr.is_unix())
            co_return std::make_error_code(std::errc::address_family_not_supported);
        auto s = co_await eddy::detail::connect_to(addr);
        if (!s)
            co_return s.error();
        co_return unix_stream(std::move(*s));
    }

    /// Two connected, unnamed sockets (socketpair).
    static result<std::pair<unix_stream, unix_stream>> pair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
            return last_system_error();
        auto a = eddy::detail::io_source::adopt(fds[0]);
        auto b = eddy::detail::io_source::adopt(fds[1]);
        if (!a)
            return a.error();
        if (!b)
            return b.error();
        return std::pair<unix_stream, unix_stream>(unix_stream(std::move(*a)),
                                                   unix_stream(std::move(*b)));
    }

    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(source_.fd());
    }
    [[nodiscard]] result<socket_address> peer_address() const noexcept {
        return peer_address_of(source_.fd());
    }

    result<void> shutdown(int how = SHUT_WR) noexcept {
        if (::shutdown(source_.fd(), how) < 0)
            return last_system_error();
        return {};
    }

    [[nodiscard]] std::pair<read_half, write_half> split() && {
        auto shared = std::make_shared<eddy::detail::io_source>(std::move(source_));
        return {read_half(shared), write_half(shared)};
    }

    result<void> close() noexcept { return source_.close(); }
    [[nodiscard]] bool is_open() const noexcept { return source_.is_open(); }
    [[nodiscard]] int native_handle() const noexcept { return source_.fd(); }
    [[nodiscard]] eddy::detail::io_source& source() noexcept { return source_; }

private:
    static task<result<unix_stream>> error_task(std::error_code ec) { co_return ec; }

    eddy::detail::io_source source_;
};

} // namespace eddy::net
