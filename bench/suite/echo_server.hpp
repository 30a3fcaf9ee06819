#pragma once
// Echo servers for the echo workloads, each run in a child process of its own so that its
// memory and CPU time are its own, and the synchronous baseline server.
//
// The contract of a server (`serve_fn`), e.g. `void serve_eddy_epoll(int listen_fd)`:
//   - It runs in a child of the suite, forked and then re-executed (`suite --echo-server NAME
//     FD`), so it starts with a fresh memory image, not the suite's heap: single-threaded at
//     entry, RLIMIT_NOFILE at its hard limit, SIGPIPE ignored, SIGTERM at its default action
//     (terminate) and unblocked.
//   - `listen_fd` is a TCP socket bound to 127.0.0.1 and listening (backlog 4096, capped by
//     net.core.somaxconn), blocking and close-on-exec; a server wanting O_NONBLOCK sets it itself.
//   - It accepts every connection, sets TCP_NODELAY on it, and writes back every byte it reads,
//     in order, until the peer closes (or the connection fails: then it closes that connection
//     and goes on serving the others).
//   - It serves until the process receives SIGTERM, which is how the run ends: the default action
//     (the kernel ends the process) is fine, or a handler that calls _exit. It must not ignore
//     SIGTERM nor block it in every thread. Returning, or throwing, is reported as a failure.
//   - It writes nothing to stdout (RESULT lines go there); stderr is fine.
// The parent measures the child: its peak resident set (VmHWM, read just before SIGTERM; the
// child resets it when it starts) and its CPU time (any window via process_cpu(), the whole
// lifetime via stop_server()).

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "suite/echo_load.hpp"
#include "suite/rss.hpp"

namespace suite {

/// A server: serves the echo protocol on `listen_fd` until SIGTERM (see the contract above).
using serve_fn = void (*)(int listen_fd);

/// The server child's program, run by `suite --echo-server NAME FD`: serves with the server
/// called NAME (echo.cpp's table) on FD; never returns. Defined in echo.cpp.
[[noreturn]] void echo_server_main(std::string_view name, int listen_fd);

/// `suite --check-echo [NAME ...]`: checks the named servers (all available ones when none is
/// named) under backpressure; 0 when all passed. Defined in echo.cpp.
int check_echo_servers(const std::vector<std::string_view>& names);

/// A server running in a child process. Move-only; if it is destroyed while still running (an
/// exception between start_server and stop_server), the child is killed and reaped.
struct server_process {
    pid_t pid = -1;
    std::uint16_t port = 0;

    server_process() = default;
    server_process(pid_t p, std::uint16_t prt) : pid(p), port(prt) {}
    server_process(server_process&& o) noexcept
        : pid(std::exchange(o.pid, -1)), port(std::exchange(o.port, 0)) {}
    server_process& operator=(server_process&& o) noexcept {
        if (this != &o) {
            kill_now();
            pid = std::exchange(o.pid, -1);
            port = std::exchange(o.port, 0);
        }
        return *this;
    }
    ~server_process() { kill_now(); }

private:
    void kill_now() noexcept {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
            pid = -1;
        }
    }
};

/// CPU time, in microseconds.
struct cpu_times {
    double user_us = 0;
    double sys_us = 0;
};

/// What stop_server measured.
struct server_figures {
    double peak_rss_mib = 0; // VmHWM just before SIGTERM
    cpu_times lifetime;      // the whole life of the child (its rusage)
};

namespace detail::echo {

/// A KiB field ("VmHWM", "VmRSS") of /proc/<pid>/status; -1 if absent (e.g. the process has
/// exited and is a zombie).
inline long proc_status_kib(pid_t pid, const char* field) {
    const std::string path = fmt::format("/proc/{}/status", pid);
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr)
        return -1;
    char line[256];
    long value = -1;
    const std::size_t len = std::strlen(field);
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
            value = std::strtol(line + len + 1, nullptr, 10);
            break;
        }
    }
    std::fclose(f);
    return value;
}

inline double timeval_us(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
}

inline std::string describe_status(int status) {
    if (WIFEXITED(status))
        return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("killed by signal {} ({})", WTERMSIG(status),
                           ::strsignal(WTERMSIG(status)));
    return fmt::format("ended with wait status {:#x}", status);
}

/// The listening socket: 127.0.0.1, an ephemeral port, blocking, close-on-exec.
inline int open_listener(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "echo server: socket()");
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, 4096) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(), "echo server: bind/listen");
    }
    port = ntohs(addr.sin_port);
    return fd;
}

/// The child's side of start_server, between fork and exec; never returns.
[[noreturn]] inline void run_child(pid_t parent, int listen_fd, const char* name) noexcept {
    // Die with the suite (e.g. when it is interrupted), and close the race where it already did.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
        ::_exit(1);
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &sa, nullptr);
    sigset_t unblock;
    ::sigemptyset(&unblock);
    ::sigaddset(&unblock, SIGTERM);
    ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    // The listening socket survives the exec; the signal settings above do too.
    const int flags = ::fcntl(listen_fd, F_GETFD);
    if (flags < 0 || ::fcntl(listen_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
        ::_exit(1);
    char fd_text[16];
    std::snprintf(fd_text, sizeof fd_text, "%d", listen_fd);
    ::execl("/proc/self/exe", "suite", "--echo-server", name, fd_text, nullptr);
    std::fprintf(stderr, "echo server: exec /proc/self/exe: %s\n", std::strerror(errno));
    ::_exit(127);
}

} // namespace detail::echo

/// CPU time used so far by process `pid`, all its threads (live and exited). The total comes
/// from the process's CPU-time clock (nanosecond resolution); the user part from /proc/<pid>/stat
/// (clock ticks, normally 10 ms).
inline cpu_times process_cpu(pid_t pid) {
    clockid_t clock_id{};
    timespec ts{};
    if (const int err = ::clock_getcpuclockid(pid, &clock_id); err != 0)
        throw std::system_error(err, std::generic_category(), "echo server: clock_getcpuclockid");
    if (::clock_gettime(clock_id, &ts) != 0)
        throw std::system_error(errno, std::generic_category(), "echo server: clock_gettime");
    const double total_us =
        static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;

    const std::string path = fmt::format("/proc/{}/stat", pid);
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr)
        throw std::system_error(errno, std::generic_category(), "echo server: open " + path);
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so start after the last
    // ')'; utime is field 14, after the 12th space from there.
    const char* p = std::strrchr(buf, ')');
    if (p == nullptr)
        throw std::runtime_error("echo server: cannot parse " + path);
    for (int field = 3; field <= 14 && p != nullptr; ++field)
        p = std::strchr(p + 1, ' ');
    if (p == nullptr)
        throw std::runtime_error("echo server: cannot parse " + path);
    const double user_ticks = static_cast<double>(std::strtoull(p + 1, nullptr, 10));
    const double user_us =
        std::min(total_us, user_ticks * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK)));
    return {user_us, total_us - user_us};
}

/// Starts the server named `name` (see echo_server_main) in a child process. The listening
/// socket is made here, before the fork, so it accepts connections as soon as this returns (no
/// race with the child starting up); the parent's copy is closed. Raises RLIMIT_NOFILE first, so
/// the child inherits the higher limit.
inline server_process start_server(const std::string& name) {
    raise_fd_limit();
    std::uint16_t port = 0;
    const int listen_fd = detail::echo::open_listener(port);
    std::fflush(nullptr); // nothing buffered is written twice (the child never flushes anyway)
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        ::close(listen_fd);
        throw std::system_error(err, std::generic_category(), "echo server: fork");
    }
    if (pid == 0)
        detail::echo::run_child(parent, listen_fd, name.c_str());
    ::close(listen_fd);
    return server_process(pid, port);
}

/// Ends the server with SIGTERM and returns its peak RSS (read just before) and its lifetime CPU
/// time. Throws if it had already ended (a crash, or a serve function that returned), or does
/// not end within 10 s of SIGTERM (it is then killed).
inline server_figures stop_server(server_process& s) {
    if (s.pid <= 0)
        throw std::logic_error("stop_server: no server running");
    const pid_t pid = std::exchange(s.pid, -1);
    int status = 0;
    rusage usage{};
    if (::wait4(pid, &status, WNOHANG, &usage) == pid) {
        throw std::runtime_error("echo server " + detail::echo::describe_status(status) +
                                 " before the end of the run");
    }
    const long hwm_kib = detail::echo::proc_status_kib(pid, "VmHWM");
    ::kill(pid, SIGTERM);
    bool ended = false;
    for (int waited_ms = 0; waited_ms < 10'000; ++waited_ms) {
        if (::wait4(pid, &status, WNOHANG, &usage) == pid) {
            ended = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!ended) {
        ::kill(pid, SIGKILL);
        ::wait4(pid, &status, 0, &usage);
        throw std::runtime_error("echo server did not end within 10 s of SIGTERM (killed)");
    }
    if (hwm_kib < 0)
        throw std::runtime_error("echo server ended before its memory could be read");
    const bool clean = (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) ||
                       (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!clean)
        throw std::runtime_error("echo server " + detail::echo::describe_status(status) +
                                 " on SIGTERM");
    return {static_cast<double>(hwm_kib) / 1024.0,
            {detail::echo::timeval_us(usage.ru_utime), detail::echo::timeval_us(usage.ru_stime)}};
}

// ---- the synchronous baseline -------------------------------------------------------------------
//
// Blocking thread per connection: the accept loop blocks in accept4, and each connection gets a
// detached thread that loops read -> write-all until EOF or an error. The threads are created with
// a 64 KiB stack (pthread_attr_setstacksize) instead of the default 8 MiB (ulimit -s): only the
// touched pages are resident either way, but 10,000 default stacks would reserve 80 GiB of address
// space, which a strict overcommit policy refuses. A thread costs its touched stack pages (the
// thread descriptor and TLS live at the top of the stack mapping) plus kernel memory that the RSS
// figure does not show (a 16 KiB kernel stack and the task struct). When a thread cannot be
// created (RLIMIT_NPROC, kernel.threads-max, memory), that connection is closed and counted; the
// count is written to stderr when the server ends.

namespace detail::echo {

inline constexpr std::size_t sync_stack_bytes = 64 * 1024;

/// Connections closed because no thread could be created for them / accept4 failures.
inline std::atomic<unsigned long> sync_no_thread{0};
inline std::atomic<unsigned long> sync_accept_failed{0};

inline void write_count(const char* what, unsigned long n) {
    char digits[24];
    int len = 0;
    do {
        digits[len++] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    char line[160];
    std::size_t pos = 0;
    for (const char* p = "echo sync server: "; *p != '\0'; ++p)
        line[pos++] = *p;
    while (len > 0)
        line[pos++] = digits[--len];
    for (const char* p = what; *p != '\0' && pos < sizeof line - 1; ++p)
        line[pos++] = *p;
    line[pos++] = '\n';
    (void)!::write(STDERR_FILENO, line, pos);
}

/// SIGTERM: report what was refused (async-signal-safe: no stdio, no allocation), then end.
inline void sync_on_sigterm(int) {
    if (const unsigned long n = sync_no_thread.load(std::memory_order_relaxed); n != 0)
        write_count(" connections closed: no thread could be created for them", n);
    if (const unsigned long n = sync_accept_failed.load(std::memory_order_relaxed); n != 0)
        write_count(" accept4 failures (out of descriptors or memory)", n);
    ::_exit(0);
}

inline bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= static_cast<std::size_t>(w);
        } else if (w < 0 && errno != EINTR) {
            return false;
        }
    }
    return true;
}

inline void* sync_connection(void* arg) {
    const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            if (!write_all(fd, buf, static_cast<std::size_t>(n)))
                break;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    ::close(fd);
    return nullptr;
}

} // namespace detail::echo

/// The "sync" server: blocking accept loop, one detached 64 KiB-stack thread per connection.
[[noreturn]] inline void serve_sync(int listen_fd) {
    struct sigaction sa {};
    sa.sa_handler = detail::echo::sync_on_sigterm;
    ::sigaction(SIGTERM, &sa, nullptr);
    const int flags = ::fcntl(listen_fd, F_GETFL);
    ::fcntl(listen_fd, F_SETFL, flags & ~O_NONBLOCK);

    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    ::pthread_attr_setstacksize(&attr, detail::echo::sync_stack_bytes);
    ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                // The connection stays queued; try again shortly.
                detail::echo::sync_accept_failed.fetch_add(1, std::memory_order_relaxed);
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            throw std::system_error(err, std::generic_category(), "echo sync server: accept4");
        }
        pthread_t thread;
        if (::pthread_create(&thread, &attr, detail::echo::sync_connection,
                             reinterpret_cast<void*>(static_cast<std::intptr_t>(fd))) != 0) {
            ::close(fd);
            detail::echo::sync_no_thread.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

} // namespace suite
