// read_files_sync: read two files one after the other with plain blocking reads, 64 KiB at a
// time, printing progress per chunk and the total time. The first file is finished before the
// second one starts. Compare with read_files_async, which reads both at once.
//
//     build/bin/read_files_sync [a.txt b.txt]
//
// Without arguments it creates two temporary files of 4 MiB and removes them afterwards.

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t temp_file_size = 4 * 1024 * 1024;

/// Reads `path` to the end; returns the byte count, or -1 on failure (already reported).
long long read_chunked(const std::filesystem::path& path) {
    std::error_code ec;
    const auto total = std::filesystem::file_size(path, ec);
    if (ec) {
        fmt::print(stderr, "{}: {}\n", path.string(), ec.message());
        return -1;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fmt::print(stderr, "{}: cannot open\n", path.string());
        return -1;
    }
    std::vector<char> buf(chunk_size);
    long long done = 0;
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = in.gcount();
        if (n <= 0)
            break;
        done += n;
        fmt::print("{}: {}/{} bytes\n", path.filename().string(), done, total);
    }
    if (in.bad()) {
        fmt::print(stderr, "{}: read error\n", path.string());
        return -1;
    }
    return done;
}

/// Writes a file of `size` bytes of filler text.
bool make_file(const std::filesystem::path& path, std::size_t size, char fill) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    std::string line(1023, fill);
    line.push_back('\n');
    for (std::size_t done = 0; done < size && out; done += line.size())
        out.write(line.data(), static_cast<std::streamsize>(line.size()));
    return static_cast<bool>(out);
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::filesystem::path> paths;
    std::filesystem::path temp_dir;
    if (argc == 3) {
        paths = {argv[1], argv[2]};
    } else if (argc == 1) {
        std::error_code ec;
        temp_dir = std::filesystem::temp_directory_path(ec) /
                   fmt::format("eddy-read-files-{}",
                               std::chrono::steady_clock::now().time_since_epoch().count());
        std::filesystem::create_directories(temp_dir, ec);
        paths = {temp_dir / "a.txt", temp_dir / "b.txt"};
        if (ec || !make_file(paths[0], temp_file_size, 'a') ||
            !make_file(paths[1], temp_file_size, 'b')) {
            fmt::print(stderr, "cannot create the temporary files in {}\n", temp_dir.string());
            return 1;
        }
    } else {
        fmt::print(stderr, "usage: {} [first-file second-file]\n", argv[0]);
        return 2;
    }

    const auto start = std::chrono::steady_clock::now();
    long long total = 0;
    bool ok = true;
    for (const auto& p : paths) {
        const long long n = read_chunked(p);
        ok = ok && n >= 0;
        total += n > 0 ? n : 0;
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    fmt::print("read {} bytes from 2 files, one after the other, in {:.2f} ms\n", total,
               std::chrono::duration<double, std::milli>(elapsed).count());

    if (!temp_dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(temp_dir, ec);
    }
    return ok ? 0 : 1;
}
