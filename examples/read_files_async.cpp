// read_files_async: read two files at once, one task each, 64 KiB at a time, printing progress
// per chunk (the lines of the two files interleave) and the total time. Compare with
// read_files_sync, which reads one file after the other.
//
//     build/bin/read_files_async [a.txt b.txt]
//     EDDY_IO_BACKEND=epoll build/bin/read_files_async      (file I/O on the blocking pool)
//
// Without arguments it creates two temporary files of 4 MiB and removes them afterwards. On
// io_uring the reads are native io_uring operations; on epoll they run on the blocking pool.

#include <eddy/fs.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t temp_file_size = 4 * 1024 * 1024;

/// Reads `path` to the end; returns the byte count, or -1 on failure (already reported).
eddy::task<long long> read_chunked(std::filesystem::path path) {
    auto f = co_await eddy::fs::file::open(path);
    if (!f) {
        fmt::print(stderr, "{}: {}\n", path.string(), f.error().message());
        co_return -1;
    }
    auto total = co_await f->size();
    if (!total) {
        fmt::print(stderr, "{}: {}\n", path.string(), total.error().message());
        co_return -1;
    }
    const std::string name = path.filename().string();
    std::vector<std::byte> buf(chunk_size);
    long long done = 0;
    for (;;) {
        auto n = co_await f->read(buf);
        if (!n) {
            fmt::print(stderr, "{}: {}\n", path.string(), n.error().message());
            co_return -1;
        }
        if (*n == 0)
            break;
        done += static_cast<long long>(*n);
        fmt::print("{}: {}/{} bytes\n", name, done, *total);
    }
    if (auto c = co_await f->close(); !c)
        fmt::print(stderr, "{}: close: {}\n", path.string(), c.error().message());
    co_return done;
}

/// Writes a file of `size` bytes of filler text.
eddy::task<bool> make_file(std::filesystem::path path, std::size_t size, char fill) {
    std::string text;
    std::string line(1023, fill);
    line.push_back('\n');
    while (text.size() < size)
        text += line;
    auto r = co_await eddy::fs::write_file(path, text);
    if (!r)
        fmt::print(stderr, "{}: {}\n", path.string(), r.error().message());
    co_return r.has_value();
}

eddy::task<int> async_main(std::vector<std::filesystem::path> paths) {
    std::filesystem::path temp_dir;
    if (paths.empty()) {
        std::error_code ec;
        temp_dir = std::filesystem::temp_directory_path(ec) /
                   fmt::format("eddy-read-files-{}",
                               std::chrono::steady_clock::now().time_since_epoch().count());
        if (auto r = co_await eddy::fs::create_dir_all(temp_dir); !r) {
            fmt::print(stderr, "{}: {}\n", temp_dir.string(), r.error().message());
            co_return 1;
        }
        paths = {temp_dir / "a.txt", temp_dir / "b.txt"};
        const bool made_a = co_await make_file(paths[0], temp_file_size, 'a');
        const bool made_b = co_await make_file(paths[1], temp_file_size, 'b');
        if (!made_a || !made_b)
            co_return 1;
    }

    const auto start = std::chrono::steady_clock::now();
    std::vector<eddy::join_handle<long long>> readers;
    for (const auto& p : paths)
        readers.push_back(eddy::spawn(read_chunked(p)));
    long long total = 0;
    bool ok = true;
    for (auto& r : readers) {
        const long long n = co_await r;
        ok = ok && n >= 0;
        total += n > 0 ? n : 0;
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    fmt::print("read {} bytes from 2 files, concurrently, in {:.2f} ms\n", total,
               std::chrono::duration<double, std::milli>(elapsed).count());

    if (!temp_dir.empty())
        (void)co_await eddy::fs::remove_dir_all(temp_dir);
    co_return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::filesystem::path> paths;
    if (argc == 3) {
        paths = {argv[1], argv[2]};
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: %s [first-file second-file]\n", argv[0]);
        return 2;
    }
    // A current-thread runtime: the two readers take turns on one thread, so the progress lines
    // interleave while each read waits for the kernel (or the blocking pool).
    auto rt = eddy::runtime::builder::current_thread().build();
    return rt.block_on(async_main(std::move(paths)));
}
