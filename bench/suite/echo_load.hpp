#pragma once
// The echo workloads' load client: C connections to an echo server on 127.0.0.1, each in a closed
// loop (send a message, wait until all of it is echoed, send the next), driven by one thread with
// epoll. Figures: messages per second over the counted window, and the p50/p99 of the latency
// from handing a message to the kernel until its last echoed byte is read.
//
// A run goes through four phases:
//   1. establish: connections are opened at most `setup_window` at a time; each sends one message
//      and waits for its echo, which proves the server accepted it, then holds. Keeping the
//      not-yet-accepted connections below the listener's backlog means no SYN is ever dropped
//      (a dropped SYN costs a 1 s retransmission): 10,000 connections come up as fast as the
//      server accepts them. A refused connect is retried briefly.
//   2. warm-up: every connection runs its loop; nothing is counted.
//   3. counted window: completions and their latencies are counted, for `seconds`.
//   4. a connection still waiting for the echo of a message sent before the window opened is
//      counted as an error (a server that lost a wake-up shows up here); every socket is closed.
// Every echo is compared with what was sent (a sequence number, the connection's index and a
// pattern); a mismatch, an early close or a socket error is counted in `errors` and closes that
// connection, the others go on.

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace suite {

/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit (children forked afterwards
/// inherit it) and returns the resulting soft limit.
inline long raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        throw std::system_error(errno, std::generic_category(), "getrlimit(RLIMIT_NOFILE)");
    // An unlimited hard limit still cannot exceed fs.nr_open (1,048,576 by default).
    const rlim_t target = rl.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
        rl.rlim_cur = target;
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
            throw std::system_error(errno, std::generic_category(), "setrlimit(RLIMIT_NOFILE)");
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > static_cast<rlim_t>(LONG_MAX)
               ? LONG_MAX
               : static_cast<long>(rl.rlim_cur);
}

/// Latencies in nanoseconds, in log-linear buckets: exact below 256 ns, then 128 buckets per
/// power of two, so a bucket is at most 1/128 (0.8%) of its values wide. Fixed size (7,424
/// counters), whatever the number of samples.
class latency_histogram {
public:
    latency_histogram() : counts_(bucket_count, 0) {}

    void record(std::uint64_t ns) {
        ++counts_[index(ns)];
        ++total_;
    }

    std::uint64_t count() const { return total_; }

    /// The value below which a fraction `p` (0 < p <= 1) of the samples lie: the midpoint of the
    /// bucket holding the sample of rank ceil(p * count). 0 when empty.
    double percentile_ns(double p) const {
        if (total_ == 0)
            return 0;
        const auto wanted = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total_))));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= wanted)
                return midpoint(i);
        }
        return midpoint(counts_.size() - 1);
    }

private:
    static constexpr std::size_t linear = 256;      // exact values 0..255
    static constexpr std::size_t half = linear / 2; // buckets per power of two above
    static constexpr std::size_t bucket_count = half * 56 + linear; // up to 2^64 - 1

    static std::size_t index(std::uint64_t v) {
        if (v < linear)
            return static_cast<std::size_t>(v);
        // v in [2^m, 2^(m+1)), m >= 8: keep its top 8 bits (128..255) and the shift m - 7.
        const int shift = 63 - std::countl_zero(v) - 7;
        return half * static_cast<std::size_t>(shift) + static_cast<std::size_t>(v >> shift);
    }

    static double midpoint(std::size_t i) {
        if (i < linear)
            return static_cast<double>(i);
        const std::size_t shift = i / half - 1;
        const std::size_t top = i - half * shift;
        const double lower = std::ldexp(static_cast<double>(top), static_cast<int>(shift));
        return lower + (std::ldexp(1.0, static_cast<int>(shift)) - 1) / 2;
    }

    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
};

struct echo_load_result {
    double msgs_per_sec = 0;
    double p50_us = 0;
    double p99_us = 0;
    std::uint64_t messages = 0; // echoes completed in the counted window
    std::uint64_t errors = 0;   // mismatched echoes, closed/failed connections, stalled messages
    std::string first_error;    // what the first error was, empty if none
    double setup_ms = 0;        // time to establish all connections (phase 1)
};

struct echo_load_options {
    /// Not counted; the loops run so that caches, the scheduler and the server are warm.
    std::chrono::duration<double> warmup{0.5};
    /// Called right when the counted window opens / closes (e.g. to read the server's CPU time).
    std::function<void()> on_measure_start;
    std::function<void()> on_measure_end;
    /// Connections being established at once (connecting, or waiting for their first echo).
    int setup_window = 128;
    /// Phase 1 fails when no connection completes for this long.
    std::chrono::duration<double> setup_timeout{10.0};
};

namespace detail::echo {

using clock = std::chrono::steady_clock;

[[noreturn]] inline void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

class load_client {
public:
    load_client(std::uint16_t port, int connections, std::chrono::duration<double> seconds,
                std::size_t size, const echo_load_options& options)
        : port_(port),
          size_(size),
          seconds_(seconds),
          options_(options),
          conns_(static_cast<std::size_t>(connections)),
          tx_(static_cast<std::size_t>(connections) * size),
          rx_(static_cast<std::size_t>(connections) * size) {
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0)
            throw_errno(errno, "echo load: epoll_create1");
        addr_.sin_family = AF_INET;
        addr_.sin_port = htons(port_);
        addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }

    load_client(const load_client&) = delete;
    load_client& operator=(const load_client&) = delete;

    ~load_client() {
        for (auto& c : conns_) {
            if (c.fd >= 0)
                ::close(c.fd);
        }
        ::close(epoll_);
    }

    echo_load_result run() {
        const auto setup_start = clock::now();
        establish();
        result_.setup_ms =
            std::chrono::duration<double, std::milli>(clock::now() - setup_start).count();

        phase_ = phase::warmup;
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            if (conns_[i].st == state::holding) {
                conns_[i].st = state::running;
                start_message(i);
            }
        }
        pump_until(clock::now() + std::chrono::duration_cast<clock::duration>(options_.warmup));

        if (options_.on_measure_start)
            options_.on_measure_start();
        phase_ = phase::measuring;
        const auto start = clock::now();
        const auto end = pump_until(start + std::chrono::duration_cast<clock::duration>(seconds_));
        phase_ = phase::done;
        if (options_.on_measure_end)
            options_.on_measure_end();

        for (std::size_t i = 0; i < conns_.size(); ++i) {
            const conn& c = conns_[i];
            if (c.st == state::running && c.sent < start)
                fail(i, "no echo during the whole counted window");
        }

        const double elapsed = std::chrono::duration<double>(end - start).count();
        result_.messages = histogram_.count();
        result_.msgs_per_sec = static_cast<double>(result_.messages) / elapsed;
        result_.p50_us = histogram_.percentile_ns(0.50) / 1e3;
        result_.p99_us = histogram_.percentile_ns(0.99) / 1e3;
        return result_;
    }

private:
    enum class state : std::uint8_t {
        fresh,      // not opened yet, or waiting to retry a refused connect
        connecting, // connect in progress
        first_echo, // connected, its first message in flight
        holding,    // established, idle until the warm-up starts
        running,    // in its send/echo loop
        dead,       // closed after an error
    };
    enum class phase : std::uint8_t { establish, warmup, measuring, done };

    struct conn {
        int fd = -1;
        state st = state::fresh;
        bool want_out = false; // EPOLLOUT registered (a write is incomplete)
        int attempts = 0;
        std::size_t written = 0;
        std::size_t got = 0;
        std::uint64_t seq = 0;
        clock::time_point sent{};
    };

    struct retry {
        std::size_t index;
        clock::time_point at;
    };

    static constexpr int max_connect_attempts = 500;
    static constexpr auto retry_delay = std::chrono::milliseconds(2);
    static constexpr int max_events = 1024;

    // ---- phase 1 ------------------------------------------------------------------------------

    void establish() {
        std::size_t next = 0;
        last_progress_ = clock::now();
        const auto timeout = std::chrono::duration_cast<clock::duration>(options_.setup_timeout);
        while (settled_ < conns_.size()) {
            const auto now = clock::now();
            while (in_setup_ < options_.setup_window) {
                if (!retries_.empty() && retries_.front().at <= now) {
                    const std::size_t i = retries_.front().index;
                    retries_.pop_front();
                    open(i);
                } else if (next < conns_.size()) {
                    open(next++);
                } else {
                    break;
                }
            }
            if (now - last_progress_ > timeout) {
                throw std::runtime_error(fmt::format(
                    "echo load: only {} of {} connections to 127.0.0.1:{} established, none in "
                    "the last {:.0f} s (is the server accepting?)",
                    settled_, conns_.size(), port_, options_.setup_timeout.count()));
            }
            poll(1);
        }
    }

    void open(std::size_t i) {
        conn& c = conns_[i];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            const int err = errno;
            if (err == EMFILE || err == ENFILE)
                throw_errno(err, fmt::format("echo load: socket() for connection {} of {} (file "
                                             "descriptor limit reached)",
                                             i + 1, conns_.size()));
            throw_errno(err, "echo load: socket()");
        }
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 &&
            errno != EINPROGRESS) {
            const int err = errno;
            ::close(c.fd);
            c.fd = -1;
            if (retryable(err)) {
                schedule_retry(i, err);
                return;
            }
            throw_errno(err, fmt::format("echo load: connect to 127.0.0.1:{}", port_));
        }
        ctl(EPOLL_CTL_ADD, i, EPOLLOUT);
        c.st = state::connecting;
        ++in_setup_;
    }

    static bool retryable(int err) {
        return err == ECONNREFUSED || err == EAGAIN || err == EADDRNOTAVAIL || err == ETIMEDOUT ||
               err == ECONNRESET;
    }

    void schedule_retry(std::size_t i, int err) {
        conn& c = conns_[i];
        c.st = state::fresh;
        if (++c.attempts >= max_connect_attempts) {
            throw_errno(err, fmt::format("echo load: connecting to 127.0.0.1:{} failed {} times",
                                         port_, c.attempts));
        }
        retries_.push_back({i, clock::now() + retry_delay});
    }

    void on_connected(std::size_t i) {
        conn& c = conns_[i];
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            ::close(c.fd); // also removes it from the epoll set
            c.fd = -1;
            --in_setup_;
            if (!retryable(err))
                throw_errno(err, fmt::format("echo load: connect to 127.0.0.1:{}", port_));
            schedule_retry(i, err);
            return;
        }
        c.st = state::first_echo;
        ctl(EPOLL_CTL_MOD, i, EPOLLIN);
        start_message(i);
    }

    // ---- the send/echo loop -------------------------------------------------------------------

    unsigned char* tx(std::size_t i) { return tx_.data() + i * size_; }
    unsigned char* rx(std::size_t i) { return rx_.data() + i * size_; }

    /// The message: its sequence number (8 bytes), the connection's index (4 bytes), then a
    /// pattern that depends on both, truncated to the message size.
    void fill(std::size_t i) {
        const conn& c = conns_[i];
        unsigned char* p = tx(i);
        unsigned char head[12];
        std::memcpy(head, &c.seq, 8);
        const auto idx = static_cast<std::uint32_t>(i);
        std::memcpy(head + 8, &idx, 4);
        const std::size_t n = std::min(size_, sizeof head);
        std::memcpy(p, head, n);
        for (std::size_t k = n; k < size_; ++k)
            p[k] = static_cast<unsigned char>(k * 31 + c.seq * 7 + i);
    }

    void start_message(std::size_t i) {
        conn& c = conns_[i];
        ++c.seq;
        fill(i);
        c.written = 0;
        c.got = 0;
        c.sent = clock::now();
        flush(i); // the echo is read when EPOLLIN (level-triggered, always registered) reports it
    }

    /// Writes what is left of the message; false if the connection failed.
    bool flush(std::size_t i) {
        conn& c = conns_[i];
        while (c.written < size_) {
            const ssize_t n = ::send(c.fd, tx(i) + c.written, size_ - c.written, MSG_NOSIGNAL);
            if (n > 0) {
                c.written += static_cast<std::size_t>(n);
            } else if (errno == EAGAIN) {
                if (!c.want_out) {
                    c.want_out = true;
                    ctl(EPOLL_CTL_MOD, i, EPOLLIN | EPOLLOUT);
                }
                return true;
            } else if (errno != EINTR) {
                fail(i, fmt::format("send: {}", std::strerror(errno)));
                return false;
            }
        }
        if (c.want_out) {
            c.want_out = false;
            ctl(EPOLL_CTL_MOD, i, EPOLLIN);
        }
        return true;
    }

    /// Reads what has been echoed so far; completes the message when all of it is back.
    void receive(std::size_t i) {
        conn& c = conns_[i];
        while (c.got < c.written) {
            // Never more than was sent: extra bytes would be an error found with the next message.
            const ssize_t n = ::recv(c.fd, rx(i) + c.got, c.written - c.got, 0);
            if (n > 0) {
                c.got += static_cast<std::size_t>(n);
            } else if (n == 0) {
                fail(i, "connection closed by the server");
                return;
            } else if (errno == EAGAIN) {
                return;
            } else if (errno != EINTR) {
                fail(i, fmt::format("recv: {}", std::strerror(errno)));
                return;
            }
        }
        if (c.got == size_)
            complete(i);
    }

    void complete(std::size_t i) {
        const auto now = clock::now();
        conn& c = conns_[i];
        if (std::memcmp(rx(i), tx(i), size_) != 0) {
            fail(i, fmt::format("echo differs from the message sent (message {})", c.seq));
            return;
        }
        if (c.st == state::first_echo) {
            c.st = state::holding;
            --in_setup_;
            ++settled_;
            last_progress_ = now;
            return;
        }
        if (phase_ == phase::measuring) {
            histogram_.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent).count()));
        }
        start_message(i);
    }

    void on_event(std::size_t i, std::uint32_t events) {
        conn& c = conns_[i];
        switch (c.st) {
        case state::connecting:
            on_connected(i);
            return;
        case state::first_echo:
        case state::running:
            if (c.written < size_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && !flush(i))
                return;
            receive(i);
            return;
        case state::holding: {
            // Nothing is expected while idle: a close, an error or stray bytes.
            unsigned char byte;
            const ssize_t n = ::recv(c.fd, &byte, 1, 0);
            if (n > 0)
                fail(i, "unexpected bytes from the server");
            else if (n == 0)
                fail(i, "connection closed by the server");
            else if (errno != EAGAIN && errno != EINTR)
                fail(i, fmt::format("recv: {}", std::strerror(errno)));
            return;
        }
        case state::fresh:
        case state::dead:
            return;
        }
    }

    void fail(std::size_t i, const std::string& why) {
        conn& c = conns_[i];
        if (result_.errors++ == 0)
            result_.first_error = fmt::format("connection {}: {}", i, why);
        if (c.st == state::connecting || c.st == state::first_echo) {
            --in_setup_;
            ++settled_;
        }
        if (c.fd >= 0)
            ::close(c.fd);
        c.fd = -1;
        c.st = state::dead;
    }

    // ---- epoll --------------------------------------------------------------------------------

    void ctl(int op, std::size_t i, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = i;
        if (::epoll_ctl(epoll_, op, conns_[i].fd, &ev) != 0)
            throw_errno(errno, "echo load: epoll_ctl");
    }

    void poll(int timeout_ms) {
        const int n = ::epoll_wait(epoll_, events_, max_events, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                return;
            throw_errno(errno, "echo load: epoll_wait");
        }
        for (int k = 0; k < n; ++k)
            on_event(static_cast<std::size_t>(events_[k].data.u64), events_[k].events);
    }

    /// Runs the loops until `deadline`; returns the time it noticed the deadline had passed (all
    /// completions handled so far happened before it).
    clock::time_point pump_until(clock::time_point deadline) {
        for (;;) {
            const auto now = clock::now();
            if (now >= deadline)
                return now;
            poll(1);
        }
    }

    std::uint16_t port_;
    std::size_t size_;
    std::chrono::duration<double> seconds_;
    const echo_load_options& options_;
    sockaddr_in addr_{};
    int epoll_ = -1;
    std::vector<conn> conns_;
    std::vector<unsigned char> tx_;
    std::vector<unsigned char> rx_;
    std::deque<retry> retries_;
    epoll_event events_[max_events]{};
    phase phase_ = phase::establish;
    int in_setup_ = 0;
    std::size_t settled_ = 0; // established or failed during phase 1
    clock::time_point last_progress_{};
    latency_histogram histogram_;
    echo_load_result result_;
};

} // namespace detail::echo

/// Runs the echo load against 127.0.0.1:`port` (see the top of this file) and returns its
/// figures. Throws std::runtime_error / std::system_error with a message when the connections
/// cannot be set up (file descriptor limit, refused connections, a server that does not accept).
inline echo_load_result run_echo_load(std::uint16_t port, int connections,
                                      std::chrono::duration<double> seconds,
                                      std::size_t message_size = 64,
                                      const echo_load_options& options = {}) {
    if (connections <= 0 || message_size == 0 || seconds.count() <= 0)
        throw std::invalid_argument(
            "echo load: connections, message size and duration must be > 0");
    const long limit = raise_fd_limit();
    // The connections, the epoll descriptor, stdio and what the process already has open.
    constexpr long reserve = 64;
    if (static_cast<long>(connections) > limit - reserve) {
        throw std::runtime_error(fmt::format(
            "echo load: {} connections need about {} file descriptors, but RLIMIT_NOFILE allows "
            "{} (raise the hard limit, e.g. `ulimit -Hn`, or fewer connections)",
            connections, connections + reserve, limit));
    }
    detail::echo::load_client client(port, connections, seconds, message_size, options);
    return client.run();
}

} // namespace suite
