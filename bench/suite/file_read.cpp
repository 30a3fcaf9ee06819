// file_read: read 1,000 files of 64 KiB each, created beforehand with the page cache warm, up to
// 64 at a time (shared/SUITE.md). Each read is open + read the whole file + close, into a buffer
// of the reader's own. One line per reader:
//
//   RESULT <runtime> file_read <ms> ms
//
//   sync        one thread, the files one after the other with blocking calls
//   threadpool  64 std::threads started beforehand, each taking the next file until none is left
//   eddy-epoll, eddy-uring   eddy::fs::read_file (file_read_eddy.cpp)
//   tokio       tokio::fs::read, a separate Rust program (file_read_tokio.cpp); when it is not
//               built, the row is skipped with a note. EDDY_TOKIO_FILE_READ: its path (default:
//               tokio_file_read next to the suite binary).
//
// The files live in a fresh directory under $TMPDIR (or /tmp), removed at the end. Every read's
// size is checked, so a reader that loses data fails loudly instead of reporting a figure.

#include "suite/file_read.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "suite/suite.hpp"

namespace suite::file_read {

file_set::file_set() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/eddy-file-read-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr)
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + templ);
    dir_ = templ;
    std::vector<char> content(file_size);
    for (std::size_t i = 0; i < content.size(); ++i)
        content[i] = static_cast<char>('a' + i % 26);
    paths_.reserve(file_count);
    for (int i = 0; i < file_count; ++i) {
        paths_.push_back(fmt::format("{}/f{:04}", dir_, i));
        const int fd =
            ::open(paths_.back().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            throw std::system_error(errno, std::generic_category(), "create " + paths_.back());
        const ssize_t n = ::write(fd, content.data(), content.size());
        ::close(fd);
        if (n != static_cast<ssize_t>(content.size()))
            throw std::runtime_error("file_read: could not write " + paths_.back());
    }
    // Warm the cache: every reader then reads from memory.
    std::vector<std::byte> buf(file_size);
    for (const auto& p : paths_)
        (void)read_blocking(p, buf.data());
}

file_set::~file_set() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::size_t read_blocking(const std::string& path, std::byte* buf) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "open " + path);
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buf + total, file_size - total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += static_cast<std::size_t>(n);
        if (total == file_size)
            break;
    }
    ::close(fd);
    return total;
}

void check_total(std::string_view runtime, std::size_t total) {
    if (total != file_count * file_size) {
        throw std::runtime_error(fmt::format("file_read ({}): read {} bytes, expected {}", runtime,
                                             total, file_count * file_size));
    }
}

namespace {

double read_sync(const file_set& files) {
    std::vector<std::byte> buf(file_size);
    const auto start = clock::now();
    std::size_t total = 0;
    for (const auto& p : files.paths())
        total += read_blocking(p, buf.data());
    const double ns = elapsed_ns(start);
    check_total("sync", total);
    return ns;
}

/// 64 threads started once; `run` hands them one batch (every file) and waits for it.
class thread_pool {
public:
    explicit thread_pool(const file_set& files) : files_(files) {
        for (int i = 0; i < max_in_flight; ++i)
            threads_.emplace_back([this] { work(); });
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        start_.notify_all();
        for (auto& t : threads_)
            t.join();
    }

    double run() {
        total_.store(0);
        next_.store(0);
        const auto start = clock::now();
        {
            std::lock_guard lock(mutex_);
            ++generation_;
            busy_ = max_in_flight;
        }
        start_.notify_all();
        std::unique_lock lock(mutex_);
        done_.wait(lock, [&] { return busy_ == 0; });
        const double ns = elapsed_ns(start);
        check_total("threadpool", total_.load());
        return ns;
    }

private:
    void work() {
        std::vector<std::byte> buf(file_size);
        std::uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                start_.wait(lock, [&] { return stop_ || generation_ != seen; });
                if (stop_)
                    return;
                seen = generation_;
            }
            std::size_t total = 0;
            const auto& paths = files_.paths();
            for (std::size_t i = next_.fetch_add(1); i < paths.size(); i = next_.fetch_add(1))
                total += read_blocking(paths[i], buf.data());
            total_.fetch_add(total);
            std::lock_guard lock(mutex_);
            if (--busy_ == 0)
                done_.notify_one();
        }
    }

    const file_set& files_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable start_;
    std::condition_variable done_;
    std::uint64_t generation_ = 0;
    int busy_ = 0;
    bool stop_ = false;
    std::atomic<std::size_t> next_{0};
    std::atomic<std::size_t> total_{0};
};

void file_read() {
    try {
        const file_set files;
        report("sync", "file_read", median_ns([&] { return read_sync(files); }) / 1e6, "ms");
        {
            thread_pool pool(files);
            report("threadpool", "file_read", median_ns([&] { return pool.run(); }) / 1e6, "ms");
        }
        std::vector<const reader*> readers;
        for (const auto& r : eddy_readers())
            readers.push_back(&r);
        readers.push_back(&tokio_reader());
        for (const reader* r : readers) {
            if (r->available && !r->available()) {
                fmt::print(stderr, "suite: {}; skipping\n", r->missing);
                continue;
            }
            report(r->runtime, "file_read", r->measure(files) / 1e6, "ms");
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "suite: file_read failed: {}\n", e.what());
    }
}

const registration reg{"file_read", file_read};

} // namespace

} // namespace suite::file_read
