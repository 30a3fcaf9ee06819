// echo_server: a TCP echo server. It listens on 127.0.0.1:PORT, serves every connection in a task
// of its own and writes back each byte it reads until the client closes. Ctrl-C (SIGINT) or
// SIGTERM stops it: it stops accepting, the runtime cancels the connections still open, and it
// prints what it served.
//
//     echo_server PORT [--backend epoll|io_uring|automatic] [--threads N]
//     echo_server 7000 &  echo_client 127.0.0.1:7000 --connections 100 --messages 10000
//
// PORT 0 picks a free port (printed at start). --backend defaults to `automatic` (io_uring when
// the kernel allows it, else epoll), which also obeys the environment variable EDDY_IO_BACKEND;
// --threads sets the worker threads (default: one per hardware thread). Exit status: 0 after a
// clean stop, 1 if the server could not start, 2 for bad arguments.

#include <eddy/eddy.hpp>
#include <eddy/net/tcp_listener.hpp>
#include <eddy/net/tcp_stream.hpp>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include <signal.h>
#include <sys/resource.h>

namespace {

using namespace std::chrono_literals;

// ---- stopping on SIGINT / SIGTERM ---------------------------------------------------------------

// Completes with the number of the first stop signal received after the listeners were made
// (they are made before the server starts, so no signal in between is missed).
eddy::task<int> stop_requested(eddy::signal::listener interrupt, eddy::signal::listener terminate) {
    auto on_interrupt = interrupt.recv();
    auto on_terminate = terminate.recv();
    auto which = co_await eddy::select(on_interrupt, on_terminate);
    co_return which.index() == 0 ? SIGINT : SIGTERM;
}

// ---- serving ------------------------------------------------------------------------------------

struct server_stats {
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> open{0};
    std::atomic<std::uint64_t> bytes{0}; // echoed
    std::atomic<std::uint64_t> failed{0};
};

// Counts a connection as open for as long as its task lives and adds its bytes to the totals when
// it ends: when the client closes, and also when the runtime cancels the task at shutdown
// (cancelling destroys the task's frame where it is suspended, so this destructor runs then too).
class connection_tally {
public:
    explicit connection_tally(server_stats& stats) noexcept : stats_(stats) {
        stats_.open.fetch_add(1, std::memory_order_relaxed);
    }
    connection_tally(const connection_tally&) = delete;
    connection_tally& operator=(const connection_tally&) = delete;
    ~connection_tally() {
        stats_.bytes.fetch_add(bytes, std::memory_order_relaxed);
        stats_.open.fetch_sub(1, std::memory_order_relaxed);
    }

    std::uint64_t bytes = 0;

private:
    server_stats& stats_;
};

// One connection: read whatever arrived, write all of it back, until the client closes.
eddy::task<> serve_connection(eddy::net::tcp_stream stream, eddy::net::socket_address peer,
                              server_stats* stats) {
    connection_tally tally(*stats);
    // Send each echo at once rather than waiting to coalesce small writes (Nagle).
    (void)stream.set_nodelay(true);
    std::array<std::byte, 4096> buf{};
    for (;;) {
        auto n = co_await stream.read(buf);
        if (!n) {
            stats->failed.fetch_add(1, std::memory_order_relaxed);
            fmt::print(stderr, "echo_server: {}: read: {}\n", peer, n.error().message());
            co_return;
        }
        if (*n == 0)
            co_return; // the client closed its side
        auto w = co_await stream.write_all(std::span<const std::byte>(buf.data(), *n));
        if (!w) {
            stats->failed.fetch_add(1, std::memory_order_relaxed);
            fmt::print(stderr, "echo_server: {}: write: {}\n", peer, w.error().message());
            co_return;
        }
        tally.bytes += *n;
    }
}

// Accepts forever, one detached task per connection. The listener closes when this task is
// cancelled, so new connections are refused from then on.
eddy::task<> accept_loop(eddy::net::tcp_listener listener, server_stats* stats) {
    for (;;) {
        auto conn = co_await listener.accept();
        if (!conn) {
            // Out of file descriptors (EMFILE, ENFILE), memory, ...: the listener keeps working
            // and the pending connection stays queued; give open connections time to close.
            fmt::print(stderr, "echo_server: accept: {}\n", conn.error().message());
            co_await eddy::sleep(100ms);
            continue;
        }
        stats->accepted.fetch_add(1, std::memory_order_relaxed);
        eddy::spawn(serve_connection(std::move(conn->first), conn->second, stats)).detach();
    }
}

eddy::task<int> serve(std::uint16_t port, server_stats* stats) {
    auto interrupt = eddy::signal::listen(SIGINT);
    auto terminate = eddy::signal::listen(SIGTERM);
    if (!interrupt || !terminate) {
        fmt::print(stderr, "echo_server: cannot handle SIGINT/SIGTERM: {}\n",
                   (!interrupt ? interrupt : terminate).error().message());
        co_return 1;
    }
    auto listener = eddy::net::tcp_listener::bind(eddy::net::socket_address::ipv4_loopback(port));
    if (!listener) {
        fmt::print(stderr, "echo_server: cannot listen on 127.0.0.1:{}: {}\n", port,
                   listener.error().message());
        co_return 1;
    }
    const auto metrics = eddy::runtime::handle::current().metrics();
    fmt::print("echo_server: listening on {} (io backend: {}, workers: {})\n",
               *listener->local_address(), metrics.io_backend, metrics.workers);
    std::fflush(stdout);

    // Whichever finishes first wins and the other is cancelled: accept_loop never finishes, so
    // this returns when a stop signal arrives, after accept_loop was cancelled.
    auto stopped =
        co_await eddy::select(accept_loop(std::move(*listener), stats),
                              stop_requested(std::move(*interrupt), std::move(*terminate)));
    const int sig = std::get<1>(stopped);
    fmt::print("echo_server: {}: stopped accepting; open connections cancelled: {}\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", stats->open.load(std::memory_order_relaxed));
    co_return 0;
}

// ---- the command line ---------------------------------------------------------------------------

struct options {
    std::uint16_t port = 0;
    eddy::io_backend backend = eddy::io_backend::automatic;
    std::optional<std::uint32_t> threads;
};

constexpr std::string_view usage = "usage: echo_server PORT [--backend epoll|io_uring|automatic] "
                                   "[--threads N]\n";

template <class T>
std::optional<T> parse_number(std::string_view text, T min, T max) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
        return std::nullopt;
    return value;
}

// The options, or nullopt after printing what is wrong.
std::optional<options> parse_options(int argc, char** argv) {
    options opts;
    bool have_port = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--backend" && has_value) {
            const auto b = eddy::parse_io_backend(argv[++i]);
            if (!b) {
                fmt::print(stderr, "echo_server: unknown backend '{}'\n", argv[i]);
                return std::nullopt;
            }
            opts.backend = *b;
        } else if (arg == "--threads" && has_value) {
            opts.threads = parse_number<std::uint32_t>(argv[++i], 1, 1024);
            if (!opts.threads) {
                fmt::print(stderr, "echo_server: --threads wants a number from 1 to 1024\n");
                return std::nullopt;
            }
        } else if (!have_port && !arg.starts_with("-")) {
            const auto p = parse_number<std::uint16_t>(arg, 0, 65535);
            if (!p) {
                fmt::print(stderr, "echo_server: '{}' is not a port (0 to 65535)\n", arg);
                return std::nullopt;
            }
            opts.port = *p;
            have_port = true;
        } else if (arg == "--backend" || arg == "--threads") {
            fmt::print(stderr, "echo_server: {} needs a value\n", arg);
            return std::nullopt;
        } else {
            fmt::print(stderr, "echo_server: unexpected argument '{}'\n", arg);
            return std::nullopt;
        }
    }
    if (!have_port) {
        fmt::print(stderr, "echo_server: PORT is missing\n");
        return std::nullopt;
    }
    return opts;
}

// Every connection is a file descriptor: allow as many as the hard limit does.
void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
        fmt::print("{}", usage);
        return 0;
    }
    const auto opts = parse_options(argc, argv);
    if (!opts) {
        fmt::print(stderr, "{}", usage);
        return 2;
    }
    raise_fd_limit();

    server_stats stats; // outlives the runtime, whose connection tasks update it
    int status = 0;
    try {
        auto builder = eddy::runtime::builder::multi_thread().io_backend(opts->backend);
        if (opts->threads)
            builder.worker_threads(*opts->threads);
        eddy::runtime rt = builder.build();
        status = rt.block_on(serve(opts->port, &stats));
        // Destroying the runtime (here) cancels the connection tasks still running.
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo_server: {}\n", e.what());
        return 1;
    }
    if (status == 0) {
        fmt::print(
            "echo_server: connections served: {}, bytes echoed: {}, connections failed: {}\n",
            stats.accepted.load(), stats.bytes.load(), stats.failed.load());
    }
    return status;
}
