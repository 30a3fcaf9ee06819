#pragma once
//! `eddy::net::unix_listener`: accepts Unix-domain stream connections on a path or an abstract
//! "@name". Binding a path creates the socket file; it is not removed when the listener closes
//! (as with every Unix socket API: remove it yourself, or use an abstract name). `accept` has
//! the cancellation rules of `tcp_listener::accept`.

#include <eddy/config.hpp>

#include <eddy/net/socket_address.hpp>
#include <eddy/net/unix_stream.hpp>
#include <eddy/result.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/io/source.hpp>
#include <eddy/detail/net/stream.hpp>

#include <string_view>
#include <utility>

namespace eddy::net {

class unix_listener {
public:
    unix_listener() noexcept = default;

    static result<unix_listener> bind(std::string_view path, int backlog = 1024) {
        auto addr = socket_address::unix_path(path);
        if (!addr)
            return addr.error();
        return bind(*addr, backlog);
    }

    static result<unix_listener> bind(const socket_address& addr, int backlog = 1024) {
        if (!addr.is_unix())
            return std::make_error_code(std::errc::address_family_not_supported);
        auto s = eddy::detail::listen_on(addr, backlog);
        if (!s)
            return s.error();
        return unix_listener(std::move(*s));
    }

    /// Waits for a connection: the stream and the peer's address (usually unnamed).
    task<result<std::pair<unix_stream, socket_address>>> accept() {
        auto r = co_await source_.accept();
        if (!r)
            co_return r.error();
        co_return std::pair<unix_stream, socket_address>(unix_stream(std::move(r->first)),
                                                         r->second);
    }

    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(source_.source().fd());
    }

    result<void> close() noexcept { return source_.close(); }
    [[nodiscard]] bool is_open() const noexcept { return source_.source().is_open(); }
    [[nodiscard]] int native_handle() const noexcept { return source_.source().fd(); }

private:
    explicit unix_listener(eddy::detail::io_source s) : source_(std::move(s)) {}

    eddy::detail::listener_source source_;
};

} // namespace eddy::net
