#pragma once
// The "epoll-loop" echo server: a hand-written epoll loop, no runtime. It is the reference a
// runtime is measured against (what the same 2 threads achieve with nothing between the
// application and epoll), as in the table of hand-written loops the echo targets quote.
//
// Two threads, each with an epoll instance of its own, level-triggered. Thread 0 also waits on
// the listening socket; it accepts every pending connection and hands each to the two loops in
// turn (epoll_ctl on the other loop's instance is safe from any thread). A readable connection
// gets one read of up to 4 KiB into the thread's buffer, written straight back. What the socket
// does not take at once (its send buffer full) is kept for that connection, which then waits
// for EPOLLOUT instead of EPOLLIN until it is all sent: the loop never blocks. Accept failures
// such as EMFILE leave the connection queued and are retried 1 ms later (the count goes to
// stderr once). The serve_fn contract is at the top of echo_server.hpp.

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace suite {

namespace detail::echo_loop {

inline constexpr int loops = 2;

/// One connection: its fd and what the socket has not taken yet.
struct connection {
    int fd;
    std::vector<char> unsent;
};

[[noreturn]] inline void fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), fmt::format("echo loop: {}", what));
}

inline void watch(int epfd, int op, connection* c, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    if (::epoll_ctl(epfd, op, c->fd, &ev) < 0)
        fail("epoll_ctl");
}

inline void drop(int epfd, connection* c) {
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    delete c;
}

/// Sends as much of `p[0, n)` as the socket takes now: the count sent, or -1 when the
/// connection failed.
inline ssize_t send_some(int fd, const char* p, std::size_t n) {
    std::size_t sent = 0;
    while (sent < n) {
        const ssize_t w = ::send(fd, p + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += static_cast<std::size_t>(w);
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else if (w == 0 || errno != EINTR)
            return -1;
    }
    return static_cast<ssize_t>(sent);
}

/// Keeps what the socket did not take of `p[0, n)` for `c` and waits for EPOLLOUT (or, all sent,
/// for EPOLLIN again). False when the connection failed.
inline bool send_or_keep(int epfd, connection* c, const char* p, std::size_t n) {
    const ssize_t sent = send_some(c->fd, p, n);
    if (sent < 0)
        return false;
    const bool was_waiting = !c->unsent.empty();
    std::vector<char> rest(p + sent, p + n); // copied before `p` (maybe in unsent) goes
    c->unsent.swap(rest);
    if (was_waiting != !c->unsent.empty())
        watch(epfd, EPOLL_CTL_MOD, c, c->unsent.empty() ? EPOLLIN : EPOLLOUT);
    return true;
}

/// Serves one readiness event of `c`: sends what it holds unsent, or reads once and writes it
/// back. False when the connection ended or failed.
inline bool serve(int epfd, connection* c, std::array<char, 4096>& buf) {
    if (!c->unsent.empty())
        return send_or_keep(epfd, c, c->unsent.data(), c->unsent.size());
    const ssize_t n = ::read(c->fd, buf.data(), buf.size());
    if (n < 0)
        return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    return n > 0 && send_or_keep(epfd, c, buf.data(), static_cast<std::size_t>(n));
}

/// Accepts every pending connection, dealing them to the loops in turn.
inline void accept_all(int listen_fd, const std::array<int, loops>& epfds, unsigned& next,
                       unsigned long& failures) {
    for (;;) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                if (failures++ == 0)
                    fmt::print(stderr, "echo loop: accept4: {} (retrying)\n",
                               std::generic_category().message(err));
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                return;
            }
            fail("accept4");
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        watch(epfds[next++ % loops], EPOLL_CTL_ADD, new connection{fd, {}}, EPOLLIN);
    }
}

/// One loop; `listen_fd` is -1 except on thread 0.
[[noreturn]] inline void run_loop(int epfd, int listen_fd, const std::array<int, loops>& epfds) {
    std::array<epoll_event, 256> events{};
    std::array<char, 4096> buf{};
    unsigned next = 0;
    unsigned long failures = 0;
    for (;;) {
        const int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = events[static_cast<std::size_t>(i)];
            if (ev.data.ptr == nullptr) {
                accept_all(listen_fd, epfds, next, failures);
                continue;
            }
            auto* c = static_cast<connection*>(ev.data.ptr);
            if (!serve(epfd, c, buf))
                drop(epfd, c);
        }
    }
}

} // namespace detail::echo_loop

/// The "epoll-loop" server: see the top of this file.
[[noreturn]] inline void serve_epoll_loop(int listen_fd) {
    namespace el = detail::echo_loop;
    const int flags = ::fcntl(listen_fd, F_GETFL);
    if (flags < 0 || ::fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        el::fail("fcntl");
    std::array<int, el::loops> epfds{};
    for (int& fd : epfds) {
        fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
            el::fail("epoll_create1");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr; // the listening socket
    if (::epoll_ctl(epfds[0], EPOLL_CTL_ADD, listen_fd, &ev) < 0)
        el::fail("epoll_ctl(listen)");
    std::thread other([&] { el::run_loop(epfds[1], -1, epfds); });
    other.detach(); // ends with the process (SIGTERM)
    el::run_loop(epfds[0], listen_fd, epfds);
}

} // namespace suite
