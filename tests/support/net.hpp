#pragma once
// Test helpers for stream sockets: failing from inside tasks, byte patterns, connected pairs,
// echo servers, file-descriptor limits and temporary directories.
//
// Tasks may run on worker threads, where Catch2's assertion macros must not be used: a failure
// inside a task throws `std::runtime_error` (via `ensure`/`must`), which propagates through
// joins and `block_on` to the test, and Catch2 reports it with its message.

#include <eddy/join_set.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>
#include <eddy/result.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/yield_now.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace eddy::test {

/// Throws `std::runtime_error(what)` unless `cond`.
inline void ensure(bool cond, std::string_view what) {
    if (!cond)
        throw std::runtime_error(std::string(what));
}

/// The value of `r`, or a `std::runtime_error` naming `what` and the error.
template <class T>
T must(eddy::result<T> r, std::string_view what) {
    if (!r)
        throw std::runtime_error(fmt::format("{}: {}", what, r.error().message()));
    if constexpr (!std::is_void_v<T>)
        return std::move(*r);
}

/// Whether `r` failed with an error equal to `e` (a `std::errc` or an `eddy::errc`).
template <class T, class E>
bool failed_with(const eddy::result<T>& r, E e) {
    return !r && r.error() == e;
}

/// The error of `r` as text, for messages ("ok" if it holds a value).
template <class T>
std::string describe(const eddy::result<T>& r) {
    return r ? std::string("ok") : r.error().message();
}

// ---- byte patterns ----------------------------------------------------------------------------

/// Byte `i` of the stream identified by `seed`: no short period, so a lost, repeated or
/// reordered chunk shows.
inline std::byte pattern_byte(std::uint64_t i, std::uint32_t seed) noexcept {
    const std::uint64_t x = (i ^ (i >> 8) ^ (i >> 17)) * 0x9E3779B1ULL + seed * 0x85EBCA77ULL;
    return static_cast<std::byte>((x >> 24) & 0xffU);
}

/// Fills `buf` with bytes `offset ..` of stream `seed`.
inline void fill_pattern(std::span<std::byte> buf, std::uint64_t offset, std::uint32_t seed) {
    for (std::size_t i = 0; i < buf.size(); ++i)
        buf[i] = pattern_byte(offset + i, seed);
}

/// Whether `buf` holds bytes `offset ..` of stream `seed`.
inline bool matches_pattern(std::span<const std::byte> buf, std::uint64_t offset,
                            std::uint32_t seed) {
    for (std::size_t i = 0; i < buf.size(); ++i) {
        if (buf[i] != pattern_byte(offset + i, seed))
            return false;
    }
    return true;
}

inline std::vector<std::byte> pattern_bytes(std::size_t n, std::uint32_t seed,
                                            std::uint64_t offset = 0) {
    std::vector<std::byte> v(n);
    fill_pattern(v, offset, seed);
    return v;
}

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string_view as_text(std::span<const std::byte> b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// ---- streams ----------------------------------------------------------------------------------

/// Reads until end of stream (or `limit` bytes more than expected, then fails); returns the bytes.
template <class S>
eddy::task<std::vector<std::byte>> read_to_end(S& s, std::size_t limit = std::size_t{1} << 26) {
    std::vector<std::byte> out;
    std::array<std::byte, 4096> buf{};
    for (;;) {
        auto n = co_await s.read(buf);
        if (!n)
            throw std::runtime_error("read_to_end: " + n.error().message());
        if (*n == 0)
            co_return out;
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
        ensure(out.size() <= limit, "read_to_end: more bytes than expected");
    }
}

/// Echoes everything it reads until end of stream, then shuts its writing side; returns the
/// number of bytes echoed.
template <class S>
eddy::task<std::size_t> echo(S s) {
    std::array<std::byte, 4096> buf{};
    std::size_t total = 0;
    for (;;) {
        auto n = co_await s.read(buf);
        if (!n)
            throw std::runtime_error("echo read: " + n.error().message());
        if (*n == 0)
            break;
        must(co_await s.write_all(std::span<const std::byte>(buf.data(), *n)), "echo write");
        total += *n;
    }
    (void)s.shutdown();
    co_return total;
}

/// Accepts `count` connections on `l`, echoing each in its own task; returns the total number
/// of bytes echoed once every connection ended.
template <class L>
eddy::task<std::size_t> echo_server(L l, std::size_t count) {
    eddy::join_set<std::size_t> conns;
    for (std::size_t i = 0; i < count; ++i) {
        auto c = co_await l.accept();
        if (!c)
            throw std::runtime_error("echo_server accept: " + c.error().message());
        conns.spawn(echo(std::move(c->first)));
    }
    std::size_t total = 0;
    while (auto r = co_await conns.join_next())
        total += r->take();
    co_return total;
}

/// Writes bytes `0 .. total` of stream `seed` through `w` in uneven pieces (with `write`, so
/// partial writes happen), then shuts the writing direction down. Returns the bytes written.
template <class W>
eddy::task<std::size_t> send_pattern(W w, std::size_t total, std::uint32_t seed) {
    std::vector<std::byte> chunk(96 * 1024);
    std::size_t sent = 0;
    std::size_t round = 0;
    while (sent < total) {
        const std::size_t want = std::min(total - sent, 1 + (round++ * 7919) % chunk.size());
        fill_pattern(std::span<std::byte>(chunk.data(), want), sent, seed);
        auto n = co_await w.write(std::span<const std::byte>(chunk.data(), want));
        if (!n)
            throw std::runtime_error(
                fmt::format("send_pattern at {}: {}", sent, n.error().message()));
        ensure(*n > 0 && *n <= want, "send_pattern: write returned a bad count");
        sent += *n;
    }
    must(w.shutdown_write(), "shutdown_write");
    co_return sent;
}

/// Reads `r` to end of stream in uneven pieces, checking every byte against stream `seed`.
/// Returns the bytes read.
template <class R>
eddy::task<std::size_t> receive_pattern(R r, std::uint32_t seed) {
    std::vector<std::byte> buf(64 * 1024 + 13);
    std::size_t got = 0;
    std::size_t round = 0;
    for (;;) {
        const std::size_t want = 1 + (round++ * 4099) % buf.size();
        auto n = co_await r.read(std::span<std::byte>(buf.data(), want));
        if (!n)
            throw std::runtime_error(
                fmt::format("receive_pattern at {}: {}", got, n.error().message()));
        if (*n == 0)
            co_return got;
        ensure(matches_pattern(std::span<const std::byte>(buf.data(), *n), got, seed),
               fmt::format("receive_pattern: wrong bytes within [{}, {})", got, got + *n));
        got += *n;
    }
}

struct tcp_pair {
    eddy::net::tcp_stream client;
    eddy::net::tcp_stream server;
};

/// A connected pair of TCP streams over IPv4 loopback (the listener is gone once it returns).
inline eddy::task<tcp_pair> connected_tcp_pair() {
    auto l =
        must(eddy::net::tcp_listener::bind(eddy::net::socket_address::ipv4_loopback(0)), "bind");
    const auto addr = must(l.local_address(), "local_address");
    // The handshake completes in the kernel: connect first, then take it from the queue.
    auto client = must(co_await eddy::net::tcp_stream::connect(addr), "connect");
    auto server = must(co_await l.accept(), "accept");
    co_return tcp_pair{std::move(client), std::move(server.first)};
}

// ---- file descriptors -------------------------------------------------------------------------

/// The number of open fds of the process.
inline std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n - 1; // the directory iterator's own fd
}

/// The lowest fd number not in use (the number the next open would get).
inline int lowest_free_fd() {
    const int fd = ::fcntl(0, F_DUPFD, 0);
    if (fd < 0)
        throw std::system_error(errno, std::system_category(), "F_DUPFD");
    ::close(fd);
    return fd;
}

/// Sets the soft RLIMIT_NOFILE for its lifetime, restoring the previous limits afterwards.
class fd_limit_guard {
public:
    fd_limit_guard() {
        if (::getrlimit(RLIMIT_NOFILE, &saved_) < 0)
            throw std::system_error(errno, std::system_category(), "getrlimit");
    }
    fd_limit_guard(const fd_limit_guard&) = delete;
    fd_limit_guard& operator=(const fd_limit_guard&) = delete;
    ~fd_limit_guard() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

    [[nodiscard]] rlim_t soft() const noexcept { return saved_.rlim_cur; }
    [[nodiscard]] rlim_t hard() const noexcept { return saved_.rlim_max; }

    void set_soft(rlim_t n) {
        rlimit l = saved_;
        l.rlim_cur = n;
        if (::setrlimit(RLIMIT_NOFILE, &l) < 0)
            throw std::system_error(errno, std::system_category(), "setrlimit");
    }

    /// Raises the soft limit to the hard limit; returns the limit now in force.
    rlim_t raise_to_hard() {
        if (saved_.rlim_cur < saved_.rlim_max)
            set_soft(saved_.rlim_max);
        return saved_.rlim_max;
    }

private:
    rlimit saved_{};
};

// ---- files ------------------------------------------------------------------------------------

/// A fresh directory under the temporary directory, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "eddy-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr)
            throw std::system_error(errno, std::system_category(), "mkdtemp");
        path_ = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

} // namespace eddy::test
