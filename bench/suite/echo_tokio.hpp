#pragma once
// The "tokio" echo server: Tokio 1.24 serving the echo workloads on the same machine, in the same
// run and against the same load client as eddy's servers (the serve_fn contract is at the top of
// echo_server.hpp).
//
// The server is a Rust program, bench/tokio (`tokio_echo --fd N`), built by scripts/bench from
// Debian's packaged crates; it mirrors echo_eddy.hpp: a multi-thread runtime with 2 workers, one
// accept task, one task per connection with a 4 KiB buffer, accept failures retried after 1 ms,
// SIGTERM at its default action. serve_tokio runs in the server child (after the re-exec, with
// the listening socket already inheritable) and replaces it with tokio_echo, so the parent's
// figures (memory, CPU time, the end on SIGTERM) are Tokio's own.
//
// Where the binary is: the path in EDDY_TOKIO_ECHO, else `tokio_echo` in the suite binary's
// directory (where scripts/bench copies it). When it is not there, tokio_available() says so
// and echo.cpp skips the server.

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

namespace suite {

namespace detail::echo {

/// The tokio_echo program to run: EDDY_TOKIO_ECHO when set, else next to this executable.
inline std::string tokio_echo_path() {
    if (const char* v = std::getenv("EDDY_TOKIO_ECHO"); v != nullptr && *v != '\0')
        return v;
    char self[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return "tokio_echo";
    std::string dir(self, static_cast<std::size_t>(n));
    const std::size_t slash = dir.rfind('/');
    dir.resize(slash == std::string::npos ? 0 : slash + 1);
    return dir + "tokio_echo";
}

} // namespace detail::echo

/// Whether the tokio_echo program exists and is executable (see tokio_echo_path).
inline bool tokio_available() {
    return ::access(detail::echo::tokio_echo_path().c_str(), X_OK) == 0;
}

/// The "tokio" server: replaces this process with `tokio_echo --fd <listen_fd>`. Returns only by
/// throwing, when the exec fails.
[[noreturn]] inline void serve_tokio(int listen_fd) {
    const std::string path = detail::echo::tokio_echo_path();
    const std::string fd_text = std::to_string(listen_fd);
    // The socket must survive the exec (the re-executed suite already inherited it that way).
    const int flags = ::fcntl(listen_fd, F_GETFD);
    if (flags < 0 || ::fcntl(listen_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "echo tokio server: fcntl");
    ::execl(path.c_str(), "tokio_echo", "--fd", fd_text.c_str(), nullptr);
    throw std::system_error(errno, std::generic_category(), "echo tokio server: exec " + path);
}

} // namespace suite
