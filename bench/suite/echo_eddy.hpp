#pragma once
// eddy's echo servers for the echo workloads, one per io backend: `serve_eddy_epoll` and
// `serve_eddy_uring` (the serve_fn contract is at the top of echo_server.hpp).
//
// A multi-thread runtime with 2 workers (shared/SUITE.md) runs one accept task and one task per
// connection: read what arrived into a 4 KiB buffer in the task's frame (the size the sync
// server reads with), write all of it back, until the peer closes or the connection fails. The
// inherited listening socket is adopted with `tcp_listener::from_native`, which puts it in the
// backend's mode (non-blocking for epoll, blocking for io_uring; io_uring accepts through one
// multishot operation). Accept failures such as EMFILE leave the connection queued; the loop counts
// them, says so on stderr once, and tries again 1 ms later. SIGTERM keeps its default action: the
// kernel ends the process, runtime and all.

#include <eddy/io_backend.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace suite {

namespace detail::echo {

inline eddy::task<> eddy_connection(eddy::net::tcp_stream stream) {
    (void)stream.set_nodelay(true);
    std::array<std::byte, 4096> buf; // the frame holds it; no need to zero it
    for (;;) {
        auto n = co_await stream.read(buf);
        if (!n || *n == 0)
            co_return;
        auto w = co_await stream.write_all(std::span<const std::byte>(buf.data(), *n));
        if (!w)
            co_return;
    }
}

inline eddy::task<> eddy_accept_loop(int listen_fd) {
    auto listener = eddy::net::tcp_listener::from_native(listen_fd);
    if (!listener)
        throw std::system_error(listener.error(), "echo eddy server: adopt the listener");
    std::uint64_t failures = 0;
    for (;;) {
        auto conn = co_await listener->accept();
        if (conn) {
            eddy::spawn(eddy_connection(std::move(conn->first))).detach();
            continue;
        }
        const std::error_code ec = conn.error();
        if (ec == std::errc::interrupted || ec == std::errc::connection_aborted ||
            ec == std::errc::protocol_error)
            continue;
        if (ec == std::errc::too_many_files_open ||
            ec == std::errc::too_many_files_open_in_system || ec == std::errc::no_buffer_space ||
            ec == std::errc::not_enough_memory) {
            if (failures++ == 0)
                fmt::print(stderr, "echo eddy server: accept: {} (retrying)\n", ec.message());
            co_await eddy::sleep(std::chrono::milliseconds(1));
            continue;
        }
        throw std::system_error(ec, "echo eddy server: accept");
    }
}

[[noreturn]] inline void serve_eddy(int listen_fd, eddy::io_backend backend) {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).io_backend(backend).build();
    rt.block_on(eddy_accept_loop(listen_fd));
    throw std::logic_error("echo eddy server: the accept loop returned");
}

} // namespace detail::echo

/// The "eddy-epoll" server.
[[noreturn]] inline void serve_eddy_epoll(int listen_fd) {
    detail::echo::serve_eddy(listen_fd, eddy::io_backend::epoll);
}

/// The "eddy-uring" server.
[[noreturn]] inline void serve_eddy_uring(int listen_fd) {
    detail::echo::serve_eddy(listen_fd, eddy::io_backend::io_uring);
}

} // namespace suite
