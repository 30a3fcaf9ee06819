// echo_client: load for an echo server. It opens C connections to HOST:PORT; on each, a task
// sends M messages of B bytes one after the other, waits for the whole echo of each and checks
// it, then it reports the messages per second over all connections.
//
//     echo_client HOST:PORT [--connections C] [--messages M] [--size B]
//     echo_client 127.0.0.1:7000 --connections 100 --messages 10000 --size 64
//
// Defaults: 10 connections, 1,000 messages, 64 bytes. HOST may be a name ("localhost:7000").
// Exit status: 0 when every echo came back intact, 1 on any error (connection refused or reset,
// a wrong echo), 2 for bad arguments. The io backend is `automatic` (see EDDY_IO_BACKEND).

#include <eddy/eddy.hpp>
#include <eddy/net/tcp_stream.hpp>

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/resource.h>

namespace {

struct options {
    std::string target;
    std::uint32_t connections = 10;
    std::uint64_t messages = 1000;
    std::size_t size = 64;
};

// Byte `j` of message `msg` on connection `conn`: differs between neighbouring messages and
// connections, so an echo that comes back on the wrong connection or out of order is caught.
std::byte pattern(std::uint32_t conn, std::uint64_t msg, std::size_t j) {
    return static_cast<std::byte>((conn * 131U + msg * 7U + j) % 251U);
}

// One connection's exchange. Returns what went wrong, or an empty string.
eddy::task<std::string> exchange(eddy::net::tcp_stream stream, std::uint32_t conn,
                                 std::uint64_t messages, std::size_t size) {
    (void)stream.set_nodelay(true);
    // Writing and reading at the same time (one half each, joined below) keeps a message larger
    // than the sockets' buffers from deadlocking: the server echoes while we still send.
    auto [rd, wr] = std::move(stream).split();
    std::vector<std::byte> out(size);
    std::vector<std::byte> in(size);
    for (std::uint64_t msg = 0; msg < messages; ++msg) {
        for (std::size_t j = 0; j < size; ++j)
            out[j] = pattern(conn, msg, j);
        auto r = co_await eddy::try_join(wr.write_all(out), rd.read_exact(in));
        if (!r) {
            co_return fmt::format("connection {}, message {}: {}", conn, msg, r.error().message());
        }
        if (in != out)
            co_return fmt::format("connection {}, message {}: the echo differs", conn, msg);
    }
    co_return std::string();
}

eddy::task<int> run(options opts) {
    using clock = std::chrono::steady_clock;
    const auto metrics = eddy::runtime::handle::current().metrics();

    // Connect. The first connection resolves the name; the others go to the address it reached.
    const auto connect_start = clock::now();
    auto first = co_await eddy::net::tcp_stream::connect(opts.target);
    if (!first) {
        fmt::print(stderr, "echo_client: cannot connect to {}: {}\n", opts.target,
                   first.error().message());
        co_return 1;
    }
    const auto addr = first->peer_address();
    if (!addr) {
        fmt::print(stderr, "echo_client: {}\n", addr.error().message());
        co_return 1;
    }
    std::vector<eddy::join_handle<eddy::result<eddy::net::tcp_stream>>> connecting;
    for (std::uint32_t i = 1; i < opts.connections; ++i)
        connecting.push_back(eddy::spawn(eddy::net::tcp_stream::connect(*addr)));
    std::vector<eddy::net::tcp_stream> streams;
    streams.push_back(std::move(*first));
    std::size_t refused = 0;
    for (auto& h : connecting) {
        auto s = co_await h;
        if (s) {
            streams.push_back(std::move(*s));
        } else if (refused++ == 0) {
            fmt::print(stderr, "echo_client: cannot connect to {}: {}\n", *addr,
                       s.error().message());
        }
    }
    if (refused != 0) {
        fmt::print(stderr, "echo_client: {} of {} connections failed\n", refused, opts.connections);
        co_return 1;
    }
    const std::chrono::duration<double, std::milli> connect_ms = clock::now() - connect_start;
    fmt::print("echo_client: connections: {} to {}, opened in {:.1f} ms (io backend: {}, "
               "workers: {})\n",
               opts.connections, *addr, connect_ms.count(), metrics.io_backend, metrics.workers);

    // Exchange: one task per connection, all at once.
    const auto start = clock::now();
    std::vector<eddy::join_handle<std::string>> running;
    for (std::uint32_t i = 0; i < opts.connections; ++i) {
        running.push_back(
            eddy::spawn(exchange(std::move(streams[i]), i, opts.messages, opts.size)));
    }
    std::size_t failed = 0;
    for (auto& h : running) {
        std::string error = co_await h;
        if (!error.empty() && failed++ < 10)
            fmt::print(stderr, "echo_client: {}\n", error);
    }
    const std::chrono::duration<double> elapsed = clock::now() - start;
    if (failed != 0) {
        fmt::print(stderr, "echo_client: {} of {} connections failed\n", failed, opts.connections);
        co_return 1;
    }
    const double total = static_cast<double>(opts.messages) * opts.connections;
    fmt::print("echo_client: messages: {:.0f} ({} bytes each) in {:.3f} s: {:.0f} msgs/s\n", total,
               opts.size, elapsed.count(), total / elapsed.count());
    co_return 0;
}

// ---- the command line ---------------------------------------------------------------------------

constexpr std::string_view usage =
    "usage: echo_client HOST:PORT [--connections C] [--messages M] [--size B]\n";

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
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--connections" && has_value) {
            const auto n = parse_number<std::uint32_t>(argv[++i], 1, 1'000'000);
            if (!n) {
                fmt::print(stderr, "echo_client: --connections wants a number from 1 to 10^6\n");
                return std::nullopt;
            }
            opts.connections = *n;
        } else if (arg == "--messages" && has_value) {
            const auto n = parse_number<std::uint64_t>(argv[++i], 1, 1'000'000'000'000);
            if (!n) {
                fmt::print(stderr, "echo_client: --messages wants a number from 1 to 10^12\n");
                return std::nullopt;
            }
            opts.messages = *n;
        } else if (arg == "--size" && has_value) {
            const auto n = parse_number<std::size_t>(argv[++i], 1, std::size_t{1} << 30);
            if (!n) {
                fmt::print(stderr, "echo_client: --size wants a number of bytes from 1 to 2^30\n");
                return std::nullopt;
            }
            opts.size = *n;
        } else if (opts.target.empty() && !arg.starts_with("-")) {
            opts.target = arg;
        } else if (arg == "--connections" || arg == "--messages" || arg == "--size") {
            fmt::print(stderr, "echo_client: {} needs a value\n", arg);
            return std::nullopt;
        } else {
            fmt::print(stderr, "echo_client: unexpected argument '{}'\n", arg);
            return std::nullopt;
        }
    }
    if (opts.target.empty()) {
        fmt::print(stderr, "echo_client: HOST:PORT is missing\n");
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
    auto opts = parse_options(argc, argv);
    if (!opts) {
        fmt::print(stderr, "{}", usage);
        return 2;
    }
    raise_fd_limit();
    try {
        return eddy::run(run(std::move(*opts)));
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo_client: {}\n", e.what());
        return 1;
    }
}
