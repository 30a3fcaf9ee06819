// echo_c<C>, C in {1, 10, 100, 1000, 10000}: TCP echo on 127.0.0.1 (shared/SUITE.md). The load
// client (echo_load.hpp) opens C connections; each sends a 64-byte message and waits for its echo,
// again and again. Each server of the table below runs in a child process of its own
// (echo_server.hpp), a fresh one for every repetition. One line per server:
//
//   RESULT <runtime> echo_c<C> <msgs/s> msgs/s p50_us=<x> p99_us=<y> server_rss_mib=<z>
//          server_cpu_us_per_msg=<u> server_user_us_per_msg=<v>
//
//   msgs/s                   echoes completed in the counted window / the window's length
//   p50_us, p99_us           latency from sending a message to reading the last byte of its echo
//   server_rss_mib           the server's peak resident set over its whole run (connections and
//                            their threads/tasks included)
//   server_cpu_us_per_msg    the server's user+sys CPU time during the counted window / the
//                            window's messages; server_user_us_per_msg: the user part alone,
//                            known to a clock tick (10 ms) only: +-0.05 us/msg over 5 s at 40k/s
//
// When the load client saw errors (mismatched echoes, connections closed or failed, a message
// with no echo during the whole window) the line ends with `errors=<n>`, the first described on
// stderr. A run that fails outright (server crash, connections refused, file descriptor limit)
// prints why on stderr and no line; the other servers still run.
//
// Environment:
//   EDDY_ECHO_SECONDS  length of the counted window in seconds (default 5). The warm-up before it
//                      is 0.5 s, or a fifth of the window when that is shorter.
//   EDDY_ECHO_REPS     repetitions (default 1, unlike the suite's 5). One repetition already
//                      times 10^5 to 10^6 messages over 5 s, so it is its own average, and five
//                      of them for 5 connection counts and 5 servers would take 11 minutes. With
//                      several, msgs/s is their median and the other figures are those of the
//                      median repetition (the lower of the middle two for an even count).
//   EDDY_ECHO_SERVERS  comma-separated runtimes to run, e.g. `sync,eddy-epoll` (default: all):
//                      sync, epoll-loop, uring-loop, eddy-epoll, eddy-uring, tokio (epoll-loop and
//                      uring-loop: hand-written epoll and io_uring loops, the references with no
//                      runtime; echo_loop.hpp, echo_uring_loop.hpp). The tokio server is a separate
//                      Rust program (echo_tokio.hpp); when it is not built, it is skipped with a
//                      note.
//   EDDY_TOKIO_ECHO    the tokio server's program (default: tokio_echo next to the suite binary).
//
// `suite --check-echo [NAME ...]` checks the servers (all that are available by default) instead
// of timing them: one connection sends 8 MiB while its reader starts late and reads in small
// pieces through a small receive buffer, so the server's sends go short and it must hold back
// what it could not send (its partial-send path); every byte must come back, in order, within
// 20 s. Exit status 0 when every server passed. ctest runs it.

#include <fmt/format.h>
#include <liburing.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "suite/echo_eddy.hpp"
#include "suite/echo_load.hpp"
#include "suite/echo_loop.hpp"
#include "suite/echo_server.hpp"
#include "suite/echo_tokio.hpp"
#include "suite/echo_uring_loop.hpp"
#include "suite/suite.hpp"

namespace {

struct echo_server {
    std::string_view runtime;
    suite::serve_fn serve;
    // For a server built apart from the suite: whether it is there. When it is not, the server is
    // skipped and `missing` is said once on stderr. nullptr: always there.
    bool (*available)();
    const char* missing;
};

// The servers measured, in output order. To add one, include the header with its serve function
// (the contract is at the top of echo_server.hpp) and add one line. eddy's two servers are in
// echo_eddy.hpp, Tokio's in echo_tokio.hpp, the hand-written epoll loop in echo_loop.hpp and the
// hand-written io_uring loop in echo_uring_loop.hpp.
const echo_server servers[] = {
    {"sync", suite::serve_sync, nullptr, nullptr},
    {"epoll-loop", suite::serve_epoll_loop, nullptr, nullptr},
    {"uring-loop", suite::serve_uring_loop, nullptr, nullptr},
    {"eddy-epoll", suite::serve_eddy_epoll, nullptr, nullptr},
    {"eddy-uring", suite::serve_eddy_uring, nullptr, nullptr},
    {"tokio", suite::serve_tokio, suite::tokio_available,
     "tokio echo server not built (scripts/bench builds it when cargo and librust-tokio-dev are "
     "available)"},
};

// Whether `s` can run; says why not on stderr, once per run of the suite.
bool server_available(const echo_server& s) {
    if (s.available == nullptr || s.available())
        return true;
    static std::vector<std::string_view> noted;
    if (std::find(noted.begin(), noted.end(), s.runtime) == noted.end()) {
        noted.push_back(s.runtime);
        fmt::print(stderr, "suite: {}; skipping\n", s.missing);
    }
    return false;
}

constexpr std::size_t message_size = 64;

struct config {
    std::chrono::duration<double> seconds{5.0};
    int reps = 1;
    std::vector<std::string> only; // empty: every server

    bool selected(std::string_view runtime) const {
        return only.empty() || std::find(only.begin(), only.end(), runtime) != only.end();
    }
};

config read_config() {
    config cfg;
    if (const char* v = std::getenv("EDDY_ECHO_SECONDS"); v != nullptr && *v != '\0') {
        char* end = nullptr;
        const double s = std::strtod(v, &end);
        if (*end != '\0' || !(s > 0 && s < 3600))
            throw std::invalid_argument(
                fmt::format("EDDY_ECHO_SECONDS='{}' is not a number of seconds in (0, 3600)", v));
        cfg.seconds = std::chrono::duration<double>(s);
    }
    if (const char* v = std::getenv("EDDY_ECHO_REPS"); v != nullptr && *v != '\0') {
        char* end = nullptr;
        const long n = std::strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > 100)
            throw std::invalid_argument(
                fmt::format("EDDY_ECHO_REPS='{}' is not a count from 1 to 100", v));
        cfg.reps = static_cast<int>(n);
    }
    if (const char* v = std::getenv("EDDY_ECHO_SERVERS"); v != nullptr && *v != '\0') {
        std::string_view rest = v;
        while (!rest.empty()) {
            const std::size_t comma = std::min(rest.find(','), rest.size());
            std::string_view name = rest.substr(0, comma);
            rest.remove_prefix(std::min(comma + 1, rest.size()));
            while (!name.empty() && name.front() == ' ')
                name.remove_prefix(1);
            while (!name.empty() && name.back() == ' ')
                name.remove_suffix(1);
            if (name.empty())
                continue;
            const bool known = std::any_of(std::begin(servers), std::end(servers),
                                           [&](const echo_server& s) { return s.runtime == name; });
            if (!known)
                fmt::print(stderr, "suite: EDDY_ECHO_SERVERS: no echo server '{}' (ignored)\n",
                           name);
            cfg.only.emplace_back(name);
        }
    }
    return cfg;
}

struct rep_figures {
    suite::echo_load_result load;
    double rss_mib = 0;
    double cpu_us_per_msg = 0;
    double user_us_per_msg = 0;
};

rep_figures run_once(const echo_server& s, int connections, const config& cfg) {
    suite::server_process server = suite::start_server(std::string(s.runtime));
    suite::cpu_times before;
    suite::cpu_times after;
    suite::echo_load_options options;
    options.warmup = std::min(std::chrono::duration<double>(0.5), cfg.seconds / 5);
    options.on_measure_start = [&] { before = suite::process_cpu(server.pid); };
    options.on_measure_end = [&] { after = suite::process_cpu(server.pid); };
    rep_figures r;
    r.load = suite::run_echo_load(server.port, connections, cfg.seconds, message_size, options);
    const suite::server_figures f = suite::stop_server(server);
    if (r.load.messages == 0) {
        throw std::runtime_error(
            "no echo completed in the counted window" +
            (r.load.first_error.empty() ? std::string() : " (" + r.load.first_error + ")"));
    }
    const auto msgs = static_cast<double>(r.load.messages);
    r.rss_mib = f.peak_rss_mib;
    r.cpu_us_per_msg = (after.user_us - before.user_us + after.sys_us - before.sys_us) / msgs;
    r.user_us_per_msg = (after.user_us - before.user_us) / msgs;
    return r;
}

void run_server(const echo_server& s, int connections, const std::string& workload,
                const config& cfg) {
    std::vector<rep_figures> reps;
    for (int i = 0; i < cfg.reps; ++i)
        reps.push_back(run_once(s, connections, cfg));

    std::vector<double> rates;
    for (const auto& r : reps)
        rates.push_back(r.load.msgs_per_sec);
    std::vector<std::size_t> order(reps.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return reps[a].load.msgs_per_sec < reps[b].load.msgs_per_sec;
    });
    const rep_figures& mid = reps[order[(order.size() - 1) / 2]];

    std::uint64_t errors = 0;
    for (const auto& r : reps) {
        errors += r.load.errors;
        if (r.load.errors != 0) {
            fmt::print(stderr, "suite: {} ({}): {} errors, the first: {}\n", workload, s.runtime,
                       r.load.errors, r.load.first_error);
        }
    }
    std::string extra = fmt::format("p50_us={:.1f} p99_us={:.1f} server_rss_mib={:.1f} "
                                    "server_cpu_us_per_msg={:.2f} server_user_us_per_msg={:.2f}",
                                    mid.load.p50_us, mid.load.p99_us, mid.rss_mib,
                                    mid.cpu_us_per_msg, mid.user_us_per_msg);
    if (errors != 0)
        extra += fmt::format(" errors={}", errors);
    suite::report(s.runtime, workload, suite::median(rates), "msgs/s", extra);
}

void echo_workload(int connections) {
    const std::string workload = fmt::format("echo_c{}", connections);
    config cfg;
    try {
        cfg = read_config();
    } catch (const std::exception& e) {
        fmt::print(stderr, "suite: {}: {}\n", workload, e.what());
        return;
    }
    for (const auto& s : servers) {
        if (!cfg.selected(s.runtime) || !server_available(s))
            continue;
        try {
            run_server(s, connections, workload, cfg);
        } catch (const std::exception& e) {
            fmt::print(stderr, "suite: {} ({}) failed: {}\n", workload, s.runtime, e.what());
        }
    }
}

// --check-echo: the byte at `offset` of what the client sends (not periodic in any buffer size the
// servers use, so a chunk sent twice or skipped shows).
unsigned char check_byte(std::size_t offset) {
    return static_cast<unsigned char>((offset * 131 + (offset >> 12)) & 0xff);
}

// One server under backpressure (see the header comment); throws what went wrong.
void check_server(const echo_server& s) {
    constexpr std::size_t total = std::size_t{8} << 20;
    suite::server_process server = suite::start_server(std::string(s.runtime));
    using suite::detail::echo::throw_errno;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw_errno(errno, "socket");
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } close_fd{fd};
    // The small receive buffer (set before connecting, so the window the client advertises stays
    // small) is what makes the server's sends go short; the timeouts turn a stuck server into a
    // failure instead of a hang. Without any of them the check would prove nothing.
    const int small = 4096;
    const timeval limit{20, 0};
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) < 0)
        throw_errno(errno, "setsockopt");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
        throw_errno(errno, "connect");
    std::string write_error;
    std::thread writer([&] {
        std::vector<unsigned char> chunk(64 * 1024);
        for (std::size_t sent = 0; sent < total;) {
            const std::size_t n = std::min(chunk.size(), total - sent);
            for (std::size_t i = 0; i < n; ++i)
                chunk[i] = check_byte(sent + i);
            std::size_t done = 0;
            while (done < n) {
                const ssize_t w = ::send(fd, chunk.data() + done, n - done, MSG_NOSIGNAL);
                if (w <= 0) {
                    write_error = fmt::format("send at byte {}: {}", sent + done,
                                              w < 0 ? std::strerror(errno) : "0");
                    ::shutdown(fd, SHUT_RDWR);
                    return;
                }
                done += static_cast<std::size_t>(w);
            }
            sent += n;
        }
    });
    // Read nothing for a while: the server's send buffer fills and its sends go short.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::string read_error;
    std::array<unsigned char, 1000> buf{};
    for (std::size_t got = 0; got < total && read_error.empty();) {
        const ssize_t r = ::recv(fd, buf.data(), std::min(buf.size(), total - got), 0);
        if (r <= 0) {
            read_error = fmt::format("recv after {} of {} bytes: {}", got, total,
                                     r < 0 ? std::strerror(errno) : "end of stream");
            break;
        }
        for (ssize_t i = 0; i < r; ++i) {
            if (buf[static_cast<std::size_t>(i)] != check_byte(got + static_cast<std::size_t>(i))) {
                read_error = fmt::format("wrong byte at {}", got + static_cast<std::size_t>(i));
                break;
            }
        }
        got += static_cast<std::size_t>(r);
    }
    if (!read_error.empty())
        ::shutdown(fd, SHUT_RDWR); // the writer may be blocked: end it
    writer.join();
    (void)suite::stop_server(server); // throws if the server died
    if (!read_error.empty())
        throw std::runtime_error(read_error);
    if (!write_error.empty())
        throw std::runtime_error(write_error);
}

} // namespace

int suite::check_echo_servers(const std::vector<std::string_view>& names) {
    io_uring probe{};
    const bool has_uring = io_uring_queue_init(8, &probe, 0) == 0;
    if (has_uring)
        io_uring_queue_exit(&probe);
    int failed = 0;
    for (const auto& s : servers) {
        const bool named =
            names.empty() || std::find(names.begin(), names.end(), s.runtime) != names.end();
        if (!named || !server_available(s))
            continue;
        if (!has_uring && s.runtime.find("uring") != std::string_view::npos) {
            fmt::print(stderr, "check-echo {}: skipped, io_uring is not available here\n",
                       s.runtime);
            continue;
        }
        try {
            check_server(s);
            fmt::print("check-echo {}: every byte came back in order\n", s.runtime);
        } catch (const std::exception& e) {
            fmt::print(stderr, "check-echo {}: FAILED: {}\n", s.runtime, e.what());
            ++failed;
        }
    }
    return failed == 0 ? 0 : 1;
}

[[noreturn]] void suite::echo_server_main(std::string_view name, int listen_fd) {
    suite::reset_peak_rss();
    const auto* s = std::find_if(std::begin(servers), std::end(servers),
                                 [&](const echo_server& e) { return e.runtime == name; });
    try {
        if (s == std::end(servers))
            throw std::invalid_argument(fmt::format("no echo server '{}'", name));
        s->serve(listen_fd);
        std::fputs("echo server: serve function returned\n", stderr);
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo server: {}\n", e.what());
    } catch (...) {
        std::fputs("echo server: unknown exception\n", stderr);
    }
    std::_Exit(1); // never static destructors
}

namespace {

const suite::registration reg_c1{"echo_c1", [] { echo_workload(1); }};
const suite::registration reg_c10{"echo_c10", [] { echo_workload(10); }};
const suite::registration reg_c100{"echo_c100", [] { echo_workload(100); }};
const suite::registration reg_c1000{"echo_c1000", [] { echo_workload(1000); }};
const suite::registration reg_c10000{"echo_c10000", [] { echo_workload(10000); }};

} // namespace
