#include <eddy/fs.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/testing.hpp>
#include <eddy/yield_now.hpp>

#include <eddy/detail/fs/backend.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/io.hpp"
#include "support/net.hpp"
#include "support/threads.hpp"
#include "support/throws.hpp"

namespace fs = eddy::fs;
using eddy::test::as_bytes;
using eddy::test::as_text;
using eddy::test::describe;
using eddy::test::ensure;
using eddy::test::failed_with;
using eddy::test::must;
using std::filesystem::path;

namespace {

constexpr std::size_t one_mib = std::size_t{1} << 20;
constexpr std::size_t tasks = 1000;

/// Turns the hook in detail/fs/backend.hpp on for its lifetime: the masked operations run on the
/// blocking pool even on io_uring.
class native_ops_mask {
public:
    explicit native_ops_mask(unsigned disabled) {
        eddy::detail::fs::native_file_ops_disabled.store(disabled);
    }
    native_ops_mask(const native_ops_mask&) = delete;
    native_ops_mask& operator=(const native_ops_mask&) = delete;
    ~native_ops_mask() { eddy::detail::fs::native_file_ops_disabled.store(0); }
};

/// Sets the hook in detail/fs/backend.hpp for its lifetime: with `off`, whole-file reads go
/// straight to the blocking pool, as on a kernel without RESOLVE_CACHED.
class inline_reads_mask {
public:
    explicit inline_reads_mask(bool off) { eddy::detail::fs::inline_reads_disabled.store(off); }
    inline_reads_mask(const inline_reads_mask&) = delete;
    inline_reads_mask& operator=(const inline_reads_mask&) = delete;
    ~inline_reads_mask() { eddy::detail::fs::inline_reads_disabled.store(false); }
};

std::string text_of(const std::vector<std::byte>& v) {
    return std::string(as_text(v));
}

/// Whether thread `tid` of this process goes to sleep (state 'S' in /proc) within 30 s.
bool sleeps_soon(pid_t tid) {
    const std::string stat = fmt::format("/proc/self/task/{}/stat", tid);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < give_up) {
        std::ifstream in(stat);
        std::string line;
        std::getline(in, line);
        const std::size_t paren = line.rfind(')'); // the state follows the command name
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S')
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

/// The number of open fds once cancelled operations are done with theirs: a pool closure whose
/// task is gone may still be running, and even open a file after the task's end, then close it.
/// Settled means no more than `before` are open and the blocking pool has nothing queued or
/// running, for 20 ms in a row; a loaded machine gets up to 30 s to get there.
eddy::task<std::size_t> settled_fd_count(std::size_t before) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (int settled = 0;;) {
        const std::size_t n = eddy::test::open_fd_count();
        const auto m = eddy::runtime::handle::current().metrics();
        const bool pool_busy =
            m.blocking_queue_depth != 0 || m.blocking_threads > m.idle_blocking_threads;
        settled = n <= before && !pool_busy ? settled + 1 : 0;
        if (settled == 10 || std::chrono::steady_clock::now() >= give_up)
            co_return n;
        co_await eddy::sleep(std::chrono::milliseconds(2));
    }
}

/// Writes `data` to `p` with plain system calls (fs::write_file would start the blocking pool).
void write_plain(const path& p, const std::vector<std::byte>& data) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        REQUIRE(n > 0);
        done += static_cast<std::size_t>(n);
    }
    REQUIRE(::close(fd) == 0);
}

} // namespace

TEST_CASE("fs: 1 MiB written and read back in 64 KiB chunks", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        const auto data = eddy::test::pattern_bytes(one_mib, 7);
        auto out = must(co_await fs::file::create(p), "create");
        ensure(out.is_open() && out.position() == 0, "fresh file");
        must(co_await out.write_all(data), "write_all");
        ensure(out.position() == one_mib, "position after write_all");
        must(co_await out.fsync(), "fsync");
        must(co_await out.close(), "close");
        ensure(!out.is_open(), "open after close");

        auto in = must(co_await fs::file::open(p), "open");
        ensure(must(co_await in.size(), "size") == one_mib, "size");
        std::vector<std::byte> back;
        std::vector<std::byte> chunk(64 * 1024);
        for (;;) {
            const std::size_t n = must(co_await in.read(chunk), "read");
            if (n == 0)
                break;
            back.insert(back.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        }
        ensure(back == data, "read back different bytes");
        ensure(in.position() == one_mib, "position at the end");
        must(co_await in.close(), "close");

        auto whole = must(co_await fs::read_file(p), "read_file");
        ensure(whole == data, "read_file different bytes");
    }(dir.path() / "big.bin"));
}

TEST_CASE("fs: read_at and write_at use offsets and leave the position alone", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        auto f = must(co_await fs::open_options().read().write().create().open(p), "open");
        ensure(must(co_await f.write_at(as_bytes("hello"), 100), "write_at") == 5, "write_at");
        ensure(must(co_await f.write_at(as_bytes("ab"), 3), "write_at") == 2, "write_at");
        ensure(f.position() == 0, "write_at moved the position");
        ensure(must(co_await f.size(), "size") == 105, "size after write_at");
        std::array<std::byte, 5> five{};
        ensure(must(co_await f.read_at(five, 100), "read_at") == 5, "read_at count");
        ensure(as_text(five) == "hello", "read_at bytes");
        std::array<std::byte, 6> head{};
        must(co_await f.read_exact(head), "read_exact");
        ensure(as_text(head) == std::string_view("\0\0\0ab\0", 6), "hole bytes");
        ensure(f.position() == 6, "read_exact position");
        must(co_await f.write_all("XY"), "write_all");
        ensure(f.position() == 8, "position after write");
        std::array<std::byte, 3> mid{};
        ensure(must(co_await f.read_at(mid, 5), "read_at") == 3, "read_at");
        ensure(as_text(mid) == std::string_view("\0XY", 3), "write at the position");
        f.set_position(100);
        std::array<std::byte, 16> tail{};
        ensure(must(co_await f.read(tail), "read") == 5, "read after set_position");
        ensure(must(co_await f.read_at(tail, 1000), "read_at past the end") == 0, "EOF at");
        must(co_await f.set_len(4), "set_len");
        ensure(must(co_await f.size(), "size") == 4, "size after set_len");
        auto huge = co_await f.read_at(tail, ~std::uint64_t{0});
        ensure(failed_with(huge, std::errc::invalid_argument), "offset beyond off_t");
        must(co_await f.close(), "close");
    }(dir.path() / "offsets.bin"));
}

TEST_CASE("fs: append mode writes at the end", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        must(co_await fs::write_file(p, "start;"), "write_file");
        auto f = must(co_await fs::open_options().append().open(p), "open append");
        ensure(f.is_append(), "append flag");
        must(co_await f.write_all("one;"), "write");
        must(co_await f.write_all("two;"), "write");
        ensure(must(co_await f.write_at(as_bytes("three;"), 0), "write_at") == 6, "write_at");
        ensure(f.position() == 0, "append writes moved the position");
        must(co_await f.close(), "close");
        auto text = must(co_await fs::read_to_string(p), "read_to_string");
        ensure(text == "start;one;two;three;", "appended text: " + text);
        // append + create makes a missing file.
        auto g = must(co_await fs::open_options().append().create().open(p.string() + ".new"),
                      "append create");
        must(co_await g.write_all("x"), "write");
        must(co_await g.close(), "close");
        ensure(must(co_await fs::read_to_string(p.string() + ".new"), "read") == "x", "new");
    }(dir.path() / "log.txt"));
}

TEST_CASE("fs: open_options errors: create_new on an existing file, bad combinations", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        auto first = must(co_await fs::open_options().write().create_new().open(p), "create_new");
        must(co_await first.close(), "close");
        auto again = co_await fs::open_options().write().create_new().open(p);
        ensure(failed_with(again, std::errc::file_exists), "create_new twice: " + describe(again));
        auto none = co_await fs::open_options().open(p);
        ensure(failed_with(none, std::errc::invalid_argument), "no access mode");
        auto create_ro = co_await fs::open_options().read().create().open(p);
        ensure(failed_with(create_ro, std::errc::invalid_argument), "create without write");
        auto trunc_append = co_await fs::open_options().append().truncate().open(p);
        ensure(failed_with(trunc_append, std::errc::invalid_argument), "append + truncate");
        auto empty = co_await fs::file::open(path());
        ensure(failed_with(empty, std::errc::invalid_argument), "empty path");
        auto nofollow = co_await fs::open_options().read().custom_flags(O_DIRECTORY).open(p);
        ensure(failed_with(nofollow, std::errc::not_a_directory), "custom flags are passed");
    }(dir.path() / "once"));
}

TEST_CASE("fs: missing files, directories and permissions give system errors", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path d) -> eddy::task<> {
        const path missing = d / "missing";
        constexpr auto enoent = std::errc::no_such_file_or_directory;
        auto o = co_await fs::file::open(missing);
        ensure(failed_with(o, enoent), "open: " + describe(o));
        auto m = co_await fs::metadata(missing);
        ensure(failed_with(m, enoent), "metadata: " + describe(m));
        auto r = co_await fs::read_file(missing);
        ensure(failed_with(r, enoent), "read_file: " + describe(r));
        auto s = co_await fs::read_to_string(missing / "deeper");
        ensure(failed_with(s, enoent), "read_to_string: " + describe(s));
        auto rm = co_await fs::remove(missing);
        ensure(failed_with(rm, enoent), "remove: " + describe(rm));
        auto rma = co_await fs::remove_dir_all(missing);
        ensure(failed_with(rma, enoent), "remove_dir_all: " + describe(rma));
        auto mv = co_await fs::rename(missing, d / "other");
        ensure(failed_with(mv, enoent), "rename: " + describe(mv));
        auto rd = co_await fs::read_dir(missing);
        ensure(failed_with(rd, enoent), "read_dir: " + describe(rd));
        auto ex = co_await fs::exists(missing);
        ensure(ex && !*ex, "exists(missing)");

        // A directory opens read-only, but reading it is EISDIR; opening it for writing too.
        auto dirf = must(co_await fs::file::open(d), "open a directory");
        std::array<std::byte, 16> buf{};
        auto rdir = co_await dirf.read(buf);
        ensure(failed_with(rdir, std::errc::is_a_directory), "read a directory: " + describe(rdir));
        must(co_await dirf.close(), "close");
        auto wdir = co_await fs::file::create(d);
        ensure(failed_with(wdir, std::errc::is_a_directory), "create a directory's path");
        auto rfdir = co_await fs::read_file(d);
        ensure(failed_with(rfdir, std::errc::is_a_directory), "read_file a directory");

        // Permission denied (root bypasses permission bits: skipped there).
        const path locked = d / "locked";
        must(co_await fs::write_file(locked, "secret"), "write_file");
        if (::geteuid() != 0) {
            ensure(::chmod(locked.c_str(), 0) == 0, "chmod");
            auto denied = co_await fs::file::open(locked);
            ensure(failed_with(denied, std::errc::permission_denied), "open: " + describe(denied));
            auto denied_read = co_await fs::read_file(locked);
            ensure(failed_with(denied_read, std::errc::permission_denied), "read_file");
            ensure(::chmod(locked.c_str(), 0600) == 0, "chmod back");
        }
    }(dir.path()));
    if (::geteuid() == 0)
        WARN("running as root: the permission-denied check was skipped");
}

TEST_CASE("fs: short reads at the end of file", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        must(co_await fs::write_file(p, "0123456789"), "write_file");
        auto f = must(co_await fs::file::open(p), "open");
        std::array<std::byte, 100> buf{};
        ensure(must(co_await f.read(buf), "read") == 10, "short read");
        ensure(must(co_await f.read(buf), "read") == 0, "EOF");
        ensure(must(co_await f.read(buf), "read") == 0, "EOF again");
        f.set_position(4);
        std::array<std::byte, 20> twenty{};
        auto exact = co_await f.read_exact(twenty);
        ensure(failed_with(exact, eddy::errc::unexpected_eof), "read_exact past EOF");
        ensure(f.position() == 10, "position after a failed read_exact");
        // Writing to a read-only file fails with EBADF from the kernel.
        auto w = co_await f.write_all("nope");
        ensure(failed_with(w, std::errc::bad_file_descriptor), "write read-only: " + describe(w));
        must(co_await f.close(), "close");
    }(dir.path() / "ten"));
}

TEST_CASE("fs: read_file, read_to_string and write_file", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    const bool pool_only = GENERATE(false, true);
    INFO(cfg.name() << (pool_only ? " (whole-file reads on the pool only)" : ""));
    const inline_reads_mask mask(pool_only);
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path d) -> eddy::task<> {
        const path p = d / "a.txt";
        must(co_await fs::write_file(p, "a longer first version"), "write_file");
        must(co_await fs::write_file(p, "short"), "overwrite");
        ensure(must(co_await fs::read_to_string(p), "read_to_string") == "short", "truncated");
        ensure(text_of(must(co_await fs::read_file(p), "read_file")) == "short", "read_file");
        must(co_await fs::write_file(d / "empty", std::string_view()), "write empty");
        ensure(must(co_await fs::read_file(d / "empty"), "read empty").empty(), "empty");
        // Sizes around the initial guess and growth steps.
        for (const std::size_t n :
             {std::size_t{1}, std::size_t{8191}, std::size_t{8192}, std::size_t{8193},
              std::size_t{65'536}, std::size_t{100'000}, std::size_t{3'000'000}}) {
            const auto data = eddy::test::pattern_bytes(n, static_cast<std::uint32_t>(n));
            must(co_await fs::write_file(d / "n", data), "write_file n");
            ensure(must(co_await fs::read_file(d / "n"), "read_file n") == data,
                   fmt::format("round trip of {} bytes", n));
        }
        // A small file after a large one (the buffer guess follows the last size).
        ensure(text_of(must(co_await fs::read_file(p), "read_file")) == "short", "small again");
        // A file the size of which statx does not know (procfs reports 0).
        auto self = must(co_await fs::read_to_string("/proc/self/status"), "procfs");
        ensure(self.find("Name:") != std::string::npos, "procfs contents");
        auto e = co_await fs::write_file(path(), "x");
        ensure(failed_with(e, std::errc::invalid_argument), "empty path");
    }(dir.path()));
}

TEST_CASE("fs: on epoll, read_file of a cached file runs on the worker, not the pool", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(0, 1)];
    REQUIRE(cfg.backend == eddy::io_backend::epoll);
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    // Just written, so in the page cache (dirty pages read like clean ones).
    std::vector<std::pair<path, std::vector<std::byte>>> files;
    for (const std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{8191}, std::size_t{8192}, std::size_t{8193},
          std::size_t{65'536}, eddy::detail::fs::max_inline_read}) {
        files.emplace_back(dir.path() / fmt::format("f{}", n),
                           eddy::test::pattern_bytes(n, static_cast<std::uint32_t>(n)));
        write_plain(files.back().first, files.back().second);
    }
    auto rt = cfg.runtime();
    rt.block_on(
        [](const std::vector<std::pair<path, std::vector<std::byte>>>* files) -> eddy::task<> {
            for (const auto& [p, data] : *files) {
                ensure(must(co_await fs::read_file(p), "read_file") == data,
                       fmt::format("read_file of {} bytes", data.size()));
                ensure(must(co_await fs::read_to_string(p), "read_to_string") == as_text(data),
                       fmt::format("read_to_string of {} bytes", data.size()));
            }
            const auto m = eddy::runtime::handle::current().metrics();
            ensure(m.blocking_threads == 0, fmt::format("{} blocking threads", m.blocking_threads));
        }(&files));
}

TEST_CASE("fs: on epoll, read_file continues on the pool where the caches cannot answer", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(0, 1)];
    REQUIRE(cfg.backend == eddy::io_backend::epoll);
    INFO(cfg.name());
    eddy::test::temp_dir dir;

    // Longer than a worker reads itself: the pool reads the rest.
    const path big = dir.path() / "big";
    const auto big_data = eddy::test::pattern_bytes(3'000'000, 7);
    write_plain(big, big_data);
    const path just_over = dir.path() / "just_over";
    const auto just_over_data = eddy::test::pattern_bytes(eddy::detail::fs::max_inline_read + 1, 8);
    write_plain(just_over, just_over_data);

    // Pages dropped from the page cache: the worker's RWF_NOWAIT read gives up at once.
    const path cold = dir.path() / "cold";
    const auto cold_data = eddy::test::pattern_bytes(100'000, 9);
    write_plain(cold, cold_data);
    bool cold_dropped = false;
    {
        const int fd = ::open(cold.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::fdatasync(fd) == 0);
        (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        std::array<std::byte, 16> probe{};
        cold_dropped = eddy::detail::fs::read_cached(fd, probe.data(), probe.size()) == -EAGAIN;
        ::close(fd);
    }
    if (!cold_dropped)
        WARN("the page cache kept the file's pages: the cold read was not tested");

    // A FIFO is not regular: opened without waiting for a writer (as io_uring's OPENAT does),
    // then read on the pool until the writer closes. The writer is already waiting in its open
    // when read_file starts (with no writer yet, the read would end at once, empty).
    const path fifo = dir.path() / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::string fifo_text = "through a fifo";
    std::atomic<pid_t> writer_tid{0};
    std::thread writer([&] {
        writer_tid.store(::gettid());
        const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC); // waits for a reader
        if (fd < 0)
            return;
        (void)::write(fd, fifo_text.data(), fifo_text.size());
        ::close(fd);
    });
    while (writer_tid.load() == 0)
        std::this_thread::yield();
    const bool writer_waits = sleeps_soon(writer_tid.load());

    auto rt = cfg.runtime();
    const std::size_t fds_before = eddy::test::open_fd_count();
    std::exception_ptr failed;
    try {
        rt.block_on([&]() -> eddy::task<> {
            ensure(must(co_await fs::read_file(big), "read_file big") == big_data, "big");
            ensure(must(co_await fs::read_file(just_over), "read_file just_over") == just_over_data,
                   "just over the inline limit");
            ensure(must(co_await fs::read_file(cold), "read_file cold") == cold_data, "cold");
            ensure(writer_waits, "the fifo's writer never waited in open");
            const std::string got = must(co_await fs::read_to_string(fifo), "read_to_string fifo");
            ensure(got == fifo_text, "fifo: '" + got + "'");
            const auto m = eddy::runtime::handle::current().metrics();
            ensure(m.blocking_threads >= 1, "the pool read the rest");
        }());
    } catch (...) {
        failed = std::current_exception();
    }
    // If no read_file reached the writer (a failure above), this does: it must not wait forever.
    const int release = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    writer.join();
    if (release >= 0)
        ::close(release);
    if (failed)
        std::rethrow_exception(failed);
    CHECK(eddy::test::open_fd_count() == fds_before);
}

TEST_CASE("fs: directories: create_dir_all, read_dir, rename, metadata, remove", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path d) -> eddy::task<> {
        const path nested = d / "a" / "b" / "c";
        must(co_await fs::create_dir_all(nested), "create_dir_all");
        must(co_await fs::create_dir_all(nested), "create_dir_all again");
        auto again = co_await fs::create_dir(nested);
        ensure(failed_with(again, std::errc::file_exists), "create_dir existing");
        must(co_await fs::create_dir(nested / "d"), "create_dir");
        must(co_await fs::write_file(nested / "zeta.txt", "zz"), "write zeta");
        must(co_await fs::write_file(nested / "alpha.txt", "a"), "write alpha");
        must(co_await fs::symlink("alpha.txt", nested / "link"), "symlink");

        auto entries = must(co_await fs::read_dir(nested), "read_dir");
        std::vector<std::string> names;
        for (const auto& e : entries)
            names.push_back(e.file_name().string());
        ensure(names == std::vector<std::string>{"alpha.txt", "d", "link", "zeta.txt"},
               fmt::format("read_dir names: {}", fmt::join(names, ",")));
        ensure(entries[0].type == std::filesystem::file_type::regular, "alpha is a file");
        ensure(entries[1].type == std::filesystem::file_type::directory, "d is a directory");
        ensure(entries[2].type == std::filesystem::file_type::symlink, "link is a symlink");
        ensure(entries[0].path == nested / "alpha.txt", "entry path");

        auto md = must(co_await fs::metadata(nested), "metadata dir");
        ensure(md.is_dir() && !md.is_file(), "dir type");
        auto mf = must(co_await fs::metadata(nested / "zeta.txt"), "metadata file");
        ensure(mf.is_file() && mf.size == 2, "file type and size");
        ensure(!mf.readonly(), "written file is writable");
        const auto age = std::chrono::system_clock::now() - mf.modified;
        ensure(age > -std::chrono::minutes(1) && age < std::chrono::minutes(10), "mtime");
        ensure(mf.links == 1 && mf.inode != 0, "links and inode");
        auto ml = must(co_await fs::metadata(nested / "link"), "metadata through link");
        ensure(ml.is_file() && ml.size == 1, "followed link");
        auto sl = must(co_await fs::symlink_metadata(nested / "link"), "symlink_metadata");
        ensure(sl.is_symlink(), "symlink itself");
        auto canon = must(co_await fs::canonicalize(nested / "link"), "canonicalize");
        ensure(canon.filename() == "alpha.txt", "canonical name " + canon.string());

        must(co_await fs::rename(nested / "zeta.txt", d / "moved.txt"), "rename");
        ensure(!must(co_await fs::exists(nested / "zeta.txt"), "exists"), "old name gone");
        ensure(must(co_await fs::read_to_string(d / "moved.txt"), "read moved") == "zz", "moved");
        must(co_await fs::copy_file(d / "moved.txt", d / "copy.txt"), "copy_file");
        ensure(must(co_await fs::read_to_string(d / "copy.txt"), "read copy") == "zz", "copy");

        auto busy = co_await fs::remove(d / "a");
        ensure(failed_with(busy, std::errc::directory_not_empty), "remove non-empty dir");
        must(co_await fs::remove(nested / "d"), "remove empty dir");
        must(co_await fs::remove(nested / "link"), "remove symlink");
        must(co_await fs::remove(d / "copy.txt"), "remove file");
        ensure(!must(co_await fs::exists(d / "copy.txt"), "exists"), "removed file");
        must(co_await fs::remove_dir_all(d / "a"), "remove_dir_all");
        ensure(!must(co_await fs::exists(d / "a"), "exists"), "tree gone");
        auto left = must(co_await fs::read_dir(d), "read_dir");
        ensure(left.size() == 1 && left[0].file_name() == "moved.txt", "one file left");
    }(dir.path()));
}

TEST_CASE("fs: fsync, fdatasync, metadata and close on an open file, and on closed files", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        auto f = must(co_await fs::file::create(p), "create");
        must(co_await f.write_all("data"), "write");
        must(co_await f.fsync(), "fsync");
        must(co_await f.fdatasync(), "fdatasync");
        auto m = must(co_await f.metadata(), "metadata");
        ensure(m.is_file() && m.size == 4, "metadata of the fd");
        ensure((m.permissions & std::filesystem::perms::owner_read) != std::filesystem::perms::none,
               "permissions");
        must(co_await f.close(), "close");
        must(co_await f.close(), "close twice is fine");
        ensure(f.native_handle() == -1, "closed fd");
        std::array<std::byte, 4> buf{};
        auto r = co_await f.read(buf);
        ensure(failed_with(r, std::errc::bad_file_descriptor), "read closed: " + describe(r));
        auto s = co_await f.fsync();
        ensure(failed_with(s, std::errc::bad_file_descriptor), "fsync closed");
        auto sz = co_await f.size();
        ensure(failed_with(sz, std::errc::bad_file_descriptor), "size closed");

        auto g = must(co_await fs::file::open(p), "open");
        fs::file h = std::move(g);
        auto moved = co_await g.read(buf); // NOLINT(bugprone-use-after-move): tested on purpose
        ensure(failed_with(moved, std::errc::bad_file_descriptor), "read moved-from");
        ensure(must(co_await h.read(buf), "read moved-to") == 4, "moved-to works");
        // Destroying an open file closes it.
        const int fd = h.native_handle();
        { fs::file gone = std::move(h); }
        ensure(::fcntl(fd, F_GETFD) < 0, "destructor closed the fd");

        auto adopted = fs::file::from_native(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
        ensure(adopted.has_value(), "from_native");
        ensure(must(co_await adopted->read(buf), "read adopted") == 4, "adopted works");
    }(dir.path() / "synced"));
}

TEST_CASE("fs: on io_uring, operations without a native opcode fall back to the pool", "[fs]") {
    const bool multi = GENERATE(false, true);
    const unsigned disabled =
        GENERATE(~0U, eddy::detail::fs::file_op_bit(eddy::detail::fs::file_op::open),
                 eddy::detail::fs::file_op_bit(eddy::detail::fs::file_op::read) |
                     eddy::detail::fs::file_op_bit(eddy::detail::fs::file_op::close),
                 eddy::detail::fs::file_op_bit(eddy::detail::fs::file_op::write) |
                     eddy::detail::fs::file_op_bit(eddy::detail::fs::file_op::statx) |
                     eddy::detail::fs::file_op_bit(eddy::detail::fs::file_op::fsync));
    INFO(fmt::format("multi {} disabled {:#x}", multi, disabled));
    const native_ops_mask mask(disabled);
    eddy::test::temp_dir dir;
    auto rt = eddy::test::io_config{eddy::io_backend::io_uring, multi}.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        const auto data = eddy::test::pattern_bytes(300'000, 3);
        auto f = must(co_await fs::open_options().read().write().create().open(p), "open");
        must(co_await f.write_all(data), "write_all");
        must(co_await f.fdatasync(), "fdatasync");
        ensure(must(co_await f.size(), "size") == data.size(), "size");
        std::vector<std::byte> back(data.size());
        f.set_position(0);
        must(co_await f.read_exact(back), "read_exact");
        ensure(back == data, "round trip");
        must(co_await f.close(), "close");
        ensure(must(co_await fs::read_file(p), "read_file") == data, "read_file");
    }(dir.path() / "mixed.bin"));
}

TEST_CASE("fs: cancelled at every suspension point, nothing leaks", "[fs][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    const unsigned disabled = GENERATE(0U, ~0U);
    INFO(cfg.name() << (disabled != 0 ? " (pool only)" : ""));
    const native_ops_mask mask(disabled);
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    // Native operations always suspend; a pool operation that finished before its join was
    // awaited does not, so the count varies there.
    const std::size_t min_points =
        cfg.backend == eddy::io_backend::io_uring && disabled == 0 ? 10 : 1;
    rt.block_on([](path d, std::size_t min_points) -> eddy::task<> {
        const std::size_t fds_before = eddy::test::open_fd_count();
        // Each run has names of its own: a cancelled directory operation still runs (on the
        // pool) and may land while the next run is under way.
        auto runs = std::make_shared<int>(0);
        auto steps = [d, runs]() -> eddy::task<int> {
            const std::string n = std::to_string((*runs)++);
            const path p = d / ("steps" + n);
            auto f = must(co_await fs::open_options().read().write().create().open(p), "open");
            must(co_await f.write_all(eddy::test::pattern_bytes(100'000, 5)), "write_all");
            must(co_await f.fdatasync(), "fdatasync");
            std::vector<std::byte> back(100'000);
            ensure(must(co_await f.read_at(back, 0), "read_at") > 0, "read_at");
            auto m = must(co_await f.metadata(), "metadata");
            ensure(m.size == 100'000, "size");
            must(co_await f.close(), "close");
            auto text = must(co_await fs::read_to_string(p), "read_to_string");
            must(co_await fs::write_file(d / ("copy" + n), text), "write_file");
            must(co_await fs::rename(d / ("copy" + n), d / ("renamed" + n)), "rename");
            must(co_await fs::remove(d / ("renamed" + n)), "remove");
            co_return 1;
        };
        const std::size_t points = co_await eddy::testing::cancel_at_every_suspension(steps);
        ensure(points >= min_points, fmt::format("only {} suspension points", points));
        // Pool closures of cancelled operations may still be finishing: their fds close when
        // they are done.
        const std::size_t fds_after = co_await settled_fd_count(fds_before);
        ensure(fds_after == fds_before,
               fmt::format("{} fds open before, {} after", fds_before, fds_after));
    }(dir.path(), min_points));
}

TEST_CASE("fs: 1,000 tasks aborted in the middle of their reads", "[fs][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::fd_limit_guard limits;
    if (limits.soft() < tasks + 200)
        limits.raise_to_hard();
    if (limits.hard() < tasks + 200) {
        WARN("RLIMIT_NOFILE hard limit too low for 1,000 open files: skipped");
        return;
    }
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        must(co_await fs::write_file(p, eddy::test::pattern_bytes(256 * 1024, 9)), "write_file");
        const std::size_t fds_before = eddy::test::open_fd_count();
        std::vector<eddy::join_handle<void>> readers;
        readers.reserve(tasks);
        for (std::size_t i = 0; i < tasks; ++i) {
            readers.push_back(eddy::spawn([](path p) -> eddy::task<> {
                auto f = must(co_await fs::file::open(p), "open");
                std::vector<std::byte> buf(16 * 1024);
                for (;;) { // reads forever, rewinding at the end: only an abort stops it
                    const std::size_t n = must(co_await f.read(buf), "read");
                    if (n == 0)
                        f.set_position(0);
                }
            }(p)));
        }
        for (int i = 0; i < 20; ++i)
            co_await eddy::yield_now();
        for (auto& h : readers)
            h.abort(); // all at once: joining one by one would let the others read meanwhile
        std::size_t cancelled = 0;
        for (auto& h : readers) {
            if (co_await eddy::test::abort_and_join(h))
                ++cancelled;
        }
        ensure(cancelled == tasks, fmt::format("{} of {} cancelled", cancelled, tasks));
        // The aborted files close on the blocking pool.
        const std::size_t fds_after = co_await settled_fd_count(fds_before);
        ensure(fds_after == fds_before,
               fmt::format("{} fds open before, {} after", fds_before, fds_after));
    }(dir.path() / "shared.bin"));
}

TEST_CASE("fs: running out of fds is an EMFILE error, and files open again afterwards", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    // Let the blocking pool start its threads before the limit goes down (it needs no fds, but
    // the runtime's own setup is done by now).
    rt.block_on([](path p) -> eddy::task<> {
        must(co_await fs::write_file(p, "x"), "write_file");
    }(dir.path() / "f"));
    eddy::test::fd_limit_guard limits;
    limits.set_soft(static_cast<rlim_t>(eddy::test::lowest_free_fd() + 16));
    // While fds are short, errors are compared by value and category address only, and no
    // message is built unless a check fails: comparing with std::errc, or message(), is a
    // virtual call on the category, and UBSan's check of that call needs a pipe (without one it
    // reports a false "invalid vptr").
    rt.block_on([](path p) -> eddy::task<> {
        const auto emfile = [](const std::error_code& ec) {
            return ec.value() == EMFILE && &ec.category() == &std::system_category();
        };
        std::vector<fs::file> files;
        std::error_code last;
        for (int i = 0; i < 100; ++i) {
            auto f = co_await fs::file::open(p);
            if (!f) {
                last = f.error();
                break;
            }
            files.push_back(std::move(*f));
        }
        const bool open_failed_emfile = emfile(last);
        const std::size_t opened = files.size();
        auto whole = co_await fs::read_file(p);
        const bool read_failed_emfile = !whole && emfile(whole.error());
        files.clear(); // every fd back before any message is built
        if (!open_failed_emfile)
            throw std::runtime_error("open until: " + last.message());
        if (opened < 8)
            throw std::runtime_error(fmt::format("only {} files opened", opened));
        if (!read_failed_emfile)
            throw std::runtime_error("read_file: " + describe(whole));
        ensure(must(co_await fs::read_to_string(p), "read after closing them") == "x", "read");
    }(dir.path() / "f"));
}

TEST_CASE("fs: a pool write that lost a select still lands before the next operation", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    // Pool operations only: a cancelled native write may or may not have happened.
    const native_ops_mask mask(~0U);
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    rt.block_on([](path p) -> eddy::task<> {
        auto f = must(co_await fs::open_options().read().write().create().open(p), "open");
        const auto data = eddy::test::pattern_bytes(one_mib, 11);
        for (int round = 0; round < 20; ++round) {
            auto r = co_await eddy::select_biased(f.write_at(data, 0), eddy::yield_now());
            (void)r;
            // The next operation waits for the write's closure, which always runs to the end.
            std::vector<std::byte> back(one_mib);
            ensure(must(co_await f.read_at(back, 0), "read_at") == one_mib, "short read");
            ensure(back == data, "the lost write did not land");
            must(co_await f.set_len(0), "set_len");
        }
        must(co_await f.close(), "close");
    }(dir.path() / "lost.bin"));
}

TEST_CASE("fs: pool operations use at most max_file_threads threads of the blocking pool", "[fs]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto b = cfg.multi ? eddy::runtime::builder::multi_thread().worker_threads(2)
                       : eddy::runtime::builder::current_thread();
    auto rt = b.io_backend(cfg.backend).max_file_threads(2).build();
    rt.block_on([](path d) -> eddy::task<> {
        constexpr std::size_t files = 32;
        for (std::size_t i = 0; i < files; ++i) {
            const path p = d / fmt::format("f{}", i);
            const std::string text = fmt::format("file {}", i);
            must(co_await fs::write_file(p, text), "write_file");
        }
        std::vector<eddy::join_handle<void>> readers;
        for (std::size_t i = 0; i < files; ++i) {
            readers.push_back(eddy::spawn([](path p, std::size_t i) -> eddy::task<> {
                const std::string expected = fmt::format("file {}", i);
                for (int round = 0; round < 4; ++round) {
                    auto meta = must(co_await fs::metadata(p), "metadata");
                    ensure(meta.is_file(), "a regular file");
                    auto text = must(co_await fs::read_to_string(p), "read_to_string");
                    ensure(text == expected, "contents");
                }
            }(d / fmt::format("f{}", i), i)));
        }
        for (auto& h : readers)
            co_await h;
        // Only file operations ran on this runtime's pool: the lane started no thread beyond
        // its two slots (on io_uring, metadata by path may run there too).
        const auto m = eddy::runtime::handle::current().metrics();
        ensure(m.blocking_threads <= 2, fmt::format("{} blocking threads", m.blocking_threads));
    }(dir.path()));
}

TEST_CASE("fs: a blocking closure can block on file operations of its runtime", "[fs]") {
    // Multi-thread runtimes only: a current-thread runtime's block_on is taken by the caller.
    const auto& cfg = eddy::test::io_configs[GENERATE(1, 3)];
    REQUIRE(cfg.multi);
    INFO(cfg.name());
    eddy::test::temp_dir dir;
    auto rt = cfg.runtime();
    const std::string text = rt.block_on([](path p) -> eddy::task<std::string> {
        must(co_await fs::write_file(p, "nested"), "write_file");
        auto h = eddy::spawn_blocking([p] {
            // On a pool thread: block_on waits for operations that may need the pool's lane.
            return eddy::runtime::handle::current().block_on(fs::read_to_string(p));
        });
        co_return must(co_await h, "read_to_string from a blocking closure");
    }(dir.path() / "n.txt"));
    CHECK(text == "nested");
}
