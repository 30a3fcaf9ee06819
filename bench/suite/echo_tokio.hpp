#pragma once
// The "tokio" echo server: Tokio 1.24 serving the echo workloads on the same machine, in the same
// run and against the same load client as eddy's servers (the serve_fn contract is at the top of
// echo_server.hpp).
//
// The server is a Rust program, bench/tokio (`tokio_echo --fd N`, one of the crate's binaries),
// built by scripts/bench from Debian's packaged crates; it mirrors echo_eddy.hpp: a multi-thread
// runtime with 2 workers, one accept task, one task per connection with a 4 KiB buffer, accept
// failures retried after 1 ms, SIGTERM at its default action. serve_tokio runs in the server
// child (after the re-exec, with the listening socket already inheritable) and replaces it with
// tokio_echo, so the parent's figures (memory, CPU time, the end on SIGTERM) are Tokio's own.
//
// Where the binary is: the path in EDDY_TOKIO_ECHO, else `tokio_echo` in the suite binary's
// directory (where scripts/bench copies it; see tokio_program.hpp). When it is not there,
// tokio_available() says so and echo.cpp skips the server.

#include <cerrno>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include "suite/tokio_program.hpp"

namespace suite {

namespace detail::echo {

inline constexpr const char* tokio_echo_name = "tokio_echo";
inline constexpr const char* tokio_echo_env = "EDDY_TOKIO_ECHO";

} // namespace detail::echo

/// Whether the tokio_echo program exists and is executable (see tokio_program.hpp).
inline bool tokio_available() {
    return tokio_program_available(detail::echo::tokio_echo_name, detail::echo::tokio_echo_env);
}

/// The "tokio" server: replaces this process with `tokio_echo --fd <listen_fd>`. Returns only by
/// throwing, when the exec fails.
[[noreturn]] inline void serve_tokio(int listen_fd) {
    const std::string path =
        tokio_program_path(detail::echo::tokio_echo_name, detail::echo::tokio_echo_env);
    const std::string fd_text = std::to_string(listen_fd);
    // The socket must survive the exec (the re-executed suite already inherited it that way).
    const int flags = ::fcntl(listen_fd, F_GETFD);
    if (flags < 0 || ::fcntl(listen_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "echo tokio server: fcntl");
    ::execl(path.c_str(), "tokio_echo", "--fd", fd_text.c_str(), nullptr);
    throw std::system_error(errno, std::generic_category(), "echo tokio server: exec " + path);
}

} // namespace suite
