#pragma once
//! `eddy::fs`: files and directories, on both I/O backends (Tokio's `tokio::fs` in C++).
//!
//! ```cpp
//! auto f = co_await eddy::fs::file::create("out.bin");           // result<fs::file>
//! if (!f) co_return f.error();
//! co_await f->write_all("hello");                                // result<void>
//! co_await f->close();                                           // reports close(2)'s error
//! auto text = co_await eddy::fs::read_to_string("out.bin");      // result<std::string>
//! auto missing = co_await eddy::fs::metadata("nope");
//! if (missing.error() == std::errc::no_such_file_or_directory) { ... }
//! ```
//!
//! Where operations run (detail/fs/backend.hpp decides, per operation): on an io_uring runtime,
//! open, close, read, write, fsync/fdatasync and statx (size, metadata) are native io_uring
//! operations; everything else, and everything on an epoll runtime, runs on the runtime's
//! blocking pool, in its file lane (detail/blocking/pool.hpp): jobs queued in FIFO order that at
//! most `runtime::builder::max_file_threads` pool threads run back to back, so many operations in
//! flight neither grow the pool to a thread each nor wake a thread per operation. Directory
//! operations use std::filesystem (its error_code overloads) or the plain system calls there
//! too. No operation waits for the device on a runtime thread. `read_file` / `read_to_string`
//! take shortcuts that cannot wait: on io_uring they call fstat(2) and close(2) of their
//! read-only fd on the runtime thread (each saves a trip through the ring); on the blocking
//! pool they first do on the runtime thread what the kernel's caches answer (an open whose path
//! the dentry cache resolves, reads the page cache holds, up to 256 KiB), as io_uring does
//! before it hands an operation to its own threads, and leave the rest to the pool. A file in
//! the cache then costs no thread hop at all; such a call spends a unit of the task's
//! cooperative budget instead of suspending. Every other awaitable suspends at least once.
//!
//! Errors: `result<T>` with system error codes (a missing file is
//! `std::errc::no_such_file_or_directory`, an existing one for `create_new` is `file_exists`).
//! An empty path is `std::errc::invalid_argument`; an operation on a closed or moved-from file is
//! `std::errc::bad_file_descriptor`; after the runtime shut down, `errc::shutdown`. Nothing here
//! throws except for programming errors (calling from outside a runtime: `std::logic_error`) and
//! `std::bad_alloc`.
//!
//! Cancellation (destroying the awaiting task at its suspension point, invariant 2):
//! - Native operations are cancelled in the kernel; their buffer, path and statx record stay
//!   valid until the kernel is done (eddy/detail/io/ops.hpp). An OPENAT that completed anyway
//!   closes the fd it produced; a CLOSE withdrawn before the kernel ran it closes the fd itself.
//! - Blocking-pool operations cannot be interrupted once their closure runs; it runs to the end.
//!   It never touches the caller's memory: reads go into a buffer the closure owns and are copied
//!   out when the awaiter resumes; writes are copied into such a buffer first. A `file` keeps the
//!   handle of its last pool operation: the next operation on the file (including `close`) first
//!   waits for it, so operations on one file never overlap or reorder, and the fd stays open
//!   while a closure still uses it (even when the `file` is destroyed meanwhile: the closure
//!   shares the fd's ownership). An `open` whose result nobody takes closes the fd.
//! - What is lost: `read`/`read_at` lose nothing (the position is unchanged; the next read reads
//!   the same bytes again). A cancelled `write`/`write_at` may or may not have written its bytes;
//!   the position is unchanged. `read_exact`, `write_all`, `read_file`, `write_file` cancelled
//!   midway may have moved part of the data and the position by the completed parts. `close`
//!   cancelled still closes the fd (its error is not reported). Directory operations cancelled
//!   may or may not have happened (their closure still runs).
//!
//! Threads: a `file` is used by one task at a time (its operations keep state: the position,
//! the pending pool operation); move it between tasks freely. A `file` opened in one runtime
//! keeps using that runtime's I/O driver. The free functions may be called from any task.

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>
#include <eddy/result.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/task.hpp>
#include <eddy/yield_now.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/fs/backend.hpp>
#include <eddy/detail/fs/ops.hpp>
#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/io/ops.hpp>
#include <eddy/detail/io/source.hpp>
#include <eddy/detail/io/uring_driver.hpp>

#include <liburing.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace eddy::fs {

/// What `metadata` reports about a file, directory or other filesystem object (statx).
struct file_metadata {
    std::uint64_t size = 0;
    std::filesystem::file_type type = std::filesystem::file_type::unknown;
    std::filesystem::perms permissions = std::filesystem::perms::none;
    std::uint32_t mode = 0; ///< st_mode: type and permission bits
    std::chrono::system_clock::time_point modified;
    std::chrono::system_clock::time_point accessed;
    std::chrono::system_clock::time_point changed; ///< status change (ctime)
    /// Creation time, when the filesystem records it.
    std::optional<std::chrono::system_clock::time_point> created;
    std::uint64_t inode = 0;
    std::uint64_t links = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;

    [[nodiscard]] bool is_file() const noexcept {
        return type == std::filesystem::file_type::regular;
    }
    [[nodiscard]] bool is_dir() const noexcept {
        return type == std::filesystem::file_type::directory;
    }
    [[nodiscard]] bool is_symlink() const noexcept {
        return type == std::filesystem::file_type::symlink;
    }
    /// No write permission bit is set (for anyone).
    [[nodiscard]] bool readonly() const noexcept {
        using std::filesystem::perms;
        return (permissions & (perms::owner_write | perms::group_write | perms::others_write)) ==
               perms::none;
    }
};

/// One entry of `read_dir`.
struct dir_entry {
    std::filesystem::path path; ///< the directory's path joined with the entry's name
    /// The entry's own type (a symlink is `symlink`); `unknown` if it vanished meanwhile.
    std::filesystem::file_type type = std::filesystem::file_type::unknown;

    [[nodiscard]] std::filesystem::path file_name() const { return path.filename(); }
};

} // namespace eddy::fs

namespace eddy::detail::fs {

using eddy::fs::file_metadata;

inline std::error_code invalid_path() noexcept {
    return std::make_error_code(std::errc::invalid_argument);
}

inline std::filesystem::file_type type_of(std::uint32_t mode) noexcept {
    using std::filesystem::file_type;
    switch (mode & S_IFMT) {
    case S_IFREG:
        return file_type::regular;
    case S_IFDIR:
        return file_type::directory;
    case S_IFLNK:
        return file_type::symlink;
    case S_IFBLK:
        return file_type::block;
    case S_IFCHR:
        return file_type::character;
    case S_IFIFO:
        return file_type::fifo;
    case S_IFSOCK:
        return file_type::socket;
    default:
        return file_type::unknown;
    }
}

inline std::chrono::system_clock::time_point time_of(const statx_timestamp& t) noexcept {
    const auto d = std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(d));
}

inline file_metadata metadata_of(const struct statx& s) noexcept {
    file_metadata m;
    m.size = s.stx_size;
    m.mode = s.stx_mode;
    m.type = type_of(s.stx_mode);
    m.permissions = static_cast<std::filesystem::perms>(s.stx_mode & 07777);
    m.modified = time_of(s.stx_mtime);
    m.accessed = time_of(s.stx_atime);
    m.changed = time_of(s.stx_ctime);
    if ((s.stx_mask & STATX_BTIME) != 0)
        m.created = time_of(s.stx_btime);
    m.inode = s.stx_ino;
    m.links = s.stx_nlink;
    m.uid = s.stx_uid;
    m.gid = s.stx_gid;
    return m;
}

inline result<file_metadata> metadata_result(const eddy::detail::fs::stat_out& out) noexcept {
    if (out.res < 0)
        return eddy::detail::fs::errno_code(out.res);
    return metadata_of(out.stx);
}

/// The driver of the calling thread's runtime, if it still accepts operations.
inline result<eddy::detail::io_driver*> usable_driver() {
    eddy::detail::io_driver& d = *eddy::detail::current_io_driver();
    if (d.is_shut_down())
        return errc::shutdown;
    return &d;
}

/// statx of a path (no fd), natively or on the blocking pool.
inline task<result<file_metadata>> stat_path(std::filesystem::path p, int flags) {
    if (p.empty())
        co_return invalid_path();
    auto d = usable_driver();
    if (!d)
        co_return d.error();
    namespace dfs = eddy::detail::fs;
    if (dfs::runs_native(**d, dfs::file_op::statx)) {
        auto out = co_await dfs::native_statx(static_cast<eddy::detail::uring_driver&>(**d),
                                              AT_FDCWD, p.string(), flags);
        co_return metadata_result(out);
    }
    auto work = [p = std::move(p), flags] {
        dfs::stat_out o;
        if (::statx(AT_FDCWD, p.c_str(), flags, dfs::statx_mask, &o.stx) < 0)
            o.res = -errno;
        return o;
    };
    auto out = co_await dfs::on_pool(std::move(work));
    if (!out)
        co_return out.error();
    co_return metadata_result(*out);
}

/// Runs `f` (returning a `result<T>`) on the blocking pool; its result, or the pool's refusal.
template <class F>
task<std::invoke_result_t<F&>> on_pool_flat(F f) {
    auto r = co_await eddy::detail::fs::on_pool(std::move(f));
    if (!r)
        co_return r.error();
    co_return std::move(*r);
}

/// A task that fails with `ec` when awaited.
template <class T>
task<result<T>> failed(std::error_code ec) {
    co_return ec;
}

inline result<void> errno_if(bool failed) noexcept {
    if (failed)
        return last_system_error();
    return {};
}

inline result<void> as_result(std::error_code ec) noexcept {
    if (ec)
        return ec;
    return {};
}

/// How `read_file` sizes its buffer and recognizes the end of a file. `size` is what fstat
/// reported for a regular file (0 for anything else, and for the regular files of procfs and
/// the like, whose size says nothing).
///
/// The buffer starts one byte larger than `size`, so the read that returns the whole file comes
/// back short. A short read that reaches `size` is taken as the end of the file: on a regular
/// file, read(2) stops early only at the end (or for a signal, which `retry_eintr` and io_uring
/// do not surface as a count), and the file had exactly that size when fstat ran. A file that
/// grew meanwhile fills the buffer instead, and the loop goes on to the real end; one that
/// shrank ends below `size`, and the loop reads on until a read returns 0. Without a size, only
/// a 0-byte read ends the file (procfs returns a page per read).
struct whole_read_plan {
    std::size_t size = 0;
    bool regular = false; ///< fstat said a regular file

    /// The size of the first buffer.
    [[nodiscard]] std::size_t first_capacity() const noexcept {
        return std::max<std::size_t>(size + 1, 8192);
    }
    /// The size of the buffer after a full one of `capacity` bytes.
    [[nodiscard]] static std::size_t grown(std::size_t capacity) noexcept {
        return std::max<std::size_t>(capacity * 2, 8192);
    }
    /// Whether the file ended, after a read of `got` bytes (not 0) out of `asked` left `filled`.
    [[nodiscard]] bool ended(std::size_t filled, std::size_t got,
                             std::size_t asked) const noexcept {
        return size > 0 && got < asked && filled >= size;
    }
};

/// The plan for the open file `fd` (fstat: a cheap call that does not wait for the device).
inline whole_read_plan plan_whole_read(int fd) noexcept {
    struct stat st {};
    whole_read_plan plan;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        plan.regular = true;
        if (st.st_size > 0)
            plan.size = static_cast<std::size_t>(st.st_size);
    }
    return plan;
}

/// Reads the open file `fd` from its position to its end into `out` with `read_some(ptr, len)` (a
/// count or -errno); 0 or -errno. `filled` bytes of `out` are already read (the file position is
/// past them); the rest of `out`, and what it grows by, is overwritten. At the end `out` holds
/// exactly the file; after an error it holds `filled` bytes and spare room, and reading can go
/// on from there.
template <class Bytes, class ReadSome>
long read_rest_sync(Bytes& out, std::size_t& filled, whole_read_plan plan, ReadSome read_some) {
    if (out.size() < plan.first_capacity())
        out.resize(plan.first_capacity());
    for (;;) {
        if (filled == out.size())
            out.resize(whole_read_plan::grown(out.size()));
        const std::size_t asked = out.size() - filled;
        const long n = read_some(out.data() + filled, asked);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        filled += static_cast<std::size_t>(n);
        if (plan.ended(filled, static_cast<std::size_t>(n), asked))
            break;
    }
    out.resize(filled);
    return 0;
}

/// Blocking reads of the open file `fd` on from `filled` bytes (see `read_rest_sync`); closes
/// `fd` before it returns, so the caller never sees the result while the file is still open.
template <class Bytes>
result<Bytes> finish_read_sync(eddy::detail::fs::unique_fd fd, Bytes out, std::size_t filled,
                               whole_read_plan plan) {
    namespace dfs = eddy::detail::fs;
    const long r = read_rest_sync(out, filled, plan, [&](void* buf, std::size_t len) {
        return dfs::retry_eintr([&] { return ::read(fd.get(), buf, len); });
    });
    if (r < 0)
        return dfs::errno_code(r);
    return out;
}

/// `read_file` / `read_to_string` in one blocking closure, into `out` (empty; any capacity it
/// has is used first).
template <class Bytes>
result<Bytes> read_whole_sync(const std::filesystem::path& p, Bytes out) {
    namespace dfs = eddy::detail::fs;
    dfs::unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        return last_system_error();
    const whole_read_plan plan = plan_whole_read(fd.get());
    return finish_read_sync(std::move(fd), std::move(out), 0, plan);
}

/// The most a whole-file read copies on a worker before the blocking pool reads the rest: a
/// cached read copies several GB/s, so the worker is away for tens of microseconds at most.
inline constexpr std::size_t max_inline_read = std::size_t{256} << 10;

/// How far `read_inline` got: done (`contents` is the result), or where the blocking pool takes
/// over: reading on from `filled` bytes of the open `fd` into `out`, or everything from the open.
template <class Bytes>
struct inline_read {
    enum class next { done, finish_on_pool, start_on_pool };
    next step = next::start_on_pool;
    result<Bytes> contents = Bytes{};
    eddy::detail::fs::unique_fd fd;
    Bytes out;
    std::size_t filled = 0;
    whole_read_plan plan;
};

/// The part of `read_file` / `read_to_string` that needs no device I/O, on the calling thread
/// (backend.hpp): the open when the dentry cache resolves the path, fstat, and reads while the
/// page cache holds the data, up to `max_inline_read` bytes. The rest is left to the pool: an
/// open the caches cannot answer is redone there from the start (a blocking open may succeed,
/// and otherwise reports its error there), and everything after a successful open (more data,
/// data not cached, and files that are not regular) is read there from the open fd. A FIFO
/// opened this way does not wait for a writer, as with io_uring's OPENAT on the other backend.
template <class Bytes>
inline_read<Bytes> read_inline(const std::filesystem::path& p) {
    namespace dfs = eddy::detail::fs;
    using next = typename inline_read<Bytes>::next;
    inline_read<Bytes> r;
    const int fd = dfs::open_cached(p.c_str());
    if (fd < 0) {
        if (fd == -ENOSYS || fd == -EINVAL)
            dfs::cached_open_available.store(false, memory_order_relaxed);
        return r;
    }
    r.fd = dfs::unique_fd(fd);
    r.step = next::finish_on_pool;
    r.plan = plan_whole_read(fd);
    if (!r.plan.regular)
        return r;
    if (r.plan.size > max_inline_read) {
        // Allocated here, where it will most likely be freed (see `read_whole`); filled there.
        r.out.reserve(r.plan.first_capacity());
        return r;
    }
    const long n = read_rest_sync(r.out, r.filled, r.plan, [&](void* buf, std::size_t len) {
        return r.filled >= max_inline_read ? -EAGAIN : dfs::read_cached(fd, buf, len);
    });
    // Not cached, or a file (system) that cannot tell without waiting: the pool reads on.
    if (n == -EAGAIN || n == -EOPNOTSUPP)
        return r;
    r.step = next::done;
    if (n < 0)
        r.contents = dfs::errno_code(n);
    else if (const long c = r.fd.close(); c < 0)
        r.contents = dfs::errno_code(c);
    else
        r.contents = std::move(r.out);
    return r;
}

/// `write_file` in one blocking closure.
inline result<void> write_whole_sync(const std::filesystem::path& p,
                                     std::span<const std::byte> data) {
    namespace dfs = eddy::detail::fs;
    dfs::unique_fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
    if (fd.get() < 0)
        return last_system_error();
    std::size_t done = 0;
    while (done < data.size()) {
        const long n = dfs::retry_eintr(
            [&] { return ::write(fd.get(), data.data() + done, data.size() - done); });
        if (n < 0)
            return dfs::errno_code(n);
        done += static_cast<std::size_t>(n);
    }
    if (const long r = fd.close(); r < 0)
        return dfs::errno_code(r);
    return {};
}

} // namespace eddy::detail::fs

namespace eddy::fs {

class file;

/// How to open a file (Tokio's `OpenOptions`): set the flags, then `co_await opts.open(path)`.
/// Access: at least one of read, write, append (append implies write). Creation flags
/// (create, create_new, truncate) need write or append; truncate does not go with append;
/// create_new (O_CREAT|O_EXCL) overrides create and truncate. Other combinations give
/// `std::errc::invalid_argument`. Files are opened close-on-exec.
class open_options {
public:
    open_options& read(bool on = true) noexcept { return set(read_, on); }
    open_options& write(bool on = true) noexcept { return set(write_, on); }
    open_options& append(bool on = true) noexcept { return set(append_, on); }
    open_options& truncate(bool on = true) noexcept { return set(truncate_, on); }
    open_options& create(bool on = true) noexcept { return set(create_, on); }
    open_options& create_new(bool on = true) noexcept { return set(create_new_, on); }
    /// Permission bits of a created file (before the umask); 0666 by default.
    open_options& mode(mode_t m) noexcept {
        mode_ = m;
        return *this;
    }
    /// Extra open(2) flags ORed in (O_NOFOLLOW, O_DIRECT, O_SYNC, ...); the access mode and the
    /// creation flags come from the setters above.
    open_options& custom_flags(int flags) noexcept {
        custom_flags_ = flags & ~(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND);
        return *this;
    }

    /// The open(2) flags these options stand for, or `invalid_argument`.
    [[nodiscard]] result<int> flags() const noexcept {
        int f = 0;
        if (append_)
            f = (read_ ? O_RDWR : O_WRONLY) | O_APPEND;
        else if (read_ && write_)
            f = O_RDWR;
        else if (write_)
            f = O_WRONLY;
        else if (read_)
            f = O_RDONLY;
        else
            return std::make_error_code(std::errc::invalid_argument);
        const bool writes = write_ || append_;
        if (!writes && (create_ || create_new_ || truncate_))
            return std::make_error_code(std::errc::invalid_argument);
        if (append_ && truncate_ && !create_new_)
            return std::make_error_code(std::errc::invalid_argument);
        if (create_new_)
            f |= O_CREAT | O_EXCL;
        else {
            if (create_)
                f |= O_CREAT;
            if (truncate_)
                f |= O_TRUNC;
        }
        return f | custom_flags_ | O_CLOEXEC;
    }

    /// Opens `path` with these options. Suspends until it is open. Cancel-safe: an fd opened
    /// after cancellation is closed. The options are read at the call, not when awaited.
    [[nodiscard]] task<result<file>> open(std::filesystem::path path) const;

private:
    open_options& set(bool& field, bool on) noexcept {
        field = on;
        return *this;
    }

    bool read_ = false;
    bool write_ = false;
    bool append_ = false;
    bool truncate_ = false;
    bool create_ = false;
    bool create_new_ = false;
    mode_t mode_ = 0666;
    int custom_flags_ = 0;
};

/// An open file (owns its fd). Move-only. See the module comment for where operations run, their
/// cancel-safety, and the one-task-at-a-time rule.
///
/// `read` and `write` use and advance the file's position, which the object tracks itself (each
/// transfer is an offset-based one: pread/pwrite, io_uring READ/WRITE with an offset), so
/// operations with explicit offsets (`read_at`, `write_at`) neither use nor move it. In append
/// mode every write goes to the end of the file and leaves the position alone.
///
/// Destroying a file that is still open closes it synchronously (errors are lost: `co_await
/// close()` to see them).
class file {
public:
    file() noexcept = default;
    file(file&&) noexcept = default;
    file& operator=(file&&) noexcept = default;
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    ~file() = default;

    /// Opens `path` read-only.
    static task<result<file>> open(std::filesystem::path path) {
        return open_options().read().open(std::move(path));
    }

    /// Opens `path` write-only, creating it or truncating it.
    static task<result<file>> create(std::filesystem::path path) {
        return open_options().write().create().truncate().open(std::move(path));
    }

    /// Takes ownership of `fd` (a regular file, in blocking mode) for the current runtime. The
    /// position starts at the fd's current offset.
    static result<file> from_native(int fd) {
        eddy::detail::fs::unique_fd owned(fd);
        auto d = eddy::detail::fs::usable_driver();
        if (!d)
            return d.error();
        const int fl = ::fcntl(fd, F_GETFL);
        if (fl < 0)
            return last_system_error();
        const off_t pos = ::lseek(fd, 0, SEEK_CUR);
        file f(eddy::detail::current_io_driver(), std::move(owned), (fl & O_APPEND) != 0);
        f.pos_ = pos > 0 ? static_cast<std::uint64_t>(pos) : 0;
        return f;
    }

    /// Reads up to `len` bytes at the position and advances it; 0 at end of file. May read
    /// fewer bytes than asked even before the end (a blocking-pool read moves at most 2 MiB).
    task<result<std::size_t>> read(void* buf, std::size_t len) {
        auto r = co_await read_at(buf, len, pos_);
        if (r)
            pos_ += *r;
        co_return r;
    }
    task<result<std::size_t>> read(std::span<std::byte> buf) {
        return read(buf.data(), buf.size());
    }

    /// Reads up to `len` bytes at `offset`; the position is not used or moved.
    task<result<std::size_t>> read_at(void* buf, std::size_t len, std::uint64_t offset) {
        namespace dfs = eddy::detail::fs;
        if (std::error_code ec = unusable())
            co_return ec;
        if (offset > max_offset)
            co_return std::make_error_code(std::errc::invalid_argument);
        if (native(dfs::file_op::read)) {
            const int fd = fd_->get();
            const auto n = static_cast<unsigned>(std::min(len, dfs::max_native_transfer));
            const std::int32_t r = co_await dfs::native(
                uring(), [=](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, n, offset); });
            co_return count(r);
        }
        const std::size_t n = std::min(len, dfs::max_pool_transfer);
        auto io = co_await run_blocking(
            [n, offset](int fd, dfs::blocking_io& io) {
                return dfs::retry_eintr(
                    [&] { return ::pread(fd, io.buf.data.get(), n, static_cast<off_t>(offset)); });
            },
            take_buffer(n));
        if (!io)
            co_return io.error();
        const long r = io->res;
        if (r > 0)
            std::memcpy(buf, io->buf.data.get(), static_cast<std::size_t>(r));
        recycle(std::move(io->buf));
        co_return count(r);
    }
    task<result<std::size_t>> read_at(std::span<std::byte> buf, std::uint64_t offset) {
        return read_at(buf.data(), buf.size(), offset);
    }

    /// Fills `buf` from the position (advancing it); `errc::unexpected_eof` if the file ends
    /// first (the position then stands at the end).
    task<result<void>> read_exact(std::span<std::byte> buf) {
        std::size_t done = 0;
        while (done < buf.size()) {
            auto r = co_await read(buf.data() + done, buf.size() - done);
            if (!r)
                co_return r.error();
            if (*r == 0)
                co_return errc::unexpected_eof;
            done += *r;
        }
        co_return result<void>{};
    }

    /// Writes up to `len` bytes at the position (at the end in append mode) and advances it.
    task<result<std::size_t>> write(const void* buf, std::size_t len) {
        auto r = co_await write_at(buf, len, append_ ? 0 : pos_);
        if (r && !append_)
            pos_ += *r;
        co_return r;
    }
    task<result<std::size_t>> write(std::span<const std::byte> buf) {
        return write(buf.data(), buf.size());
    }

    /// Writes up to `len` bytes at `offset` (at the end in append mode); the position is not
    /// used or moved.
    task<result<std::size_t>> write_at(const void* buf, std::size_t len, std::uint64_t offset) {
        namespace dfs = eddy::detail::fs;
        if (std::error_code ec = unusable())
            co_return ec;
        if (offset > max_offset)
            co_return std::make_error_code(std::errc::invalid_argument);
        if (native(dfs::file_op::write)) {
            const int fd = fd_->get();
            const auto n = static_cast<unsigned>(std::min(len, dfs::max_native_transfer));
            const std::int32_t r = co_await dfs::native(
                uring(), [=](io_uring_sqe* sqe) { io_uring_prep_write(sqe, fd, buf, n, offset); });
            co_return count(r);
        }
        const std::size_t n = std::min(len, dfs::max_pool_transfer);
        dfs::owned_buffer copy = take_buffer(n);
        if (n > 0)
            std::memcpy(copy.data.get(), buf, n);
        auto io = co_await run_blocking(
            [n, offset](int fd, dfs::blocking_io& io) {
                return dfs::retry_eintr(
                    [&] { return ::pwrite(fd, io.buf.data.get(), n, static_cast<off_t>(offset)); });
            },
            std::move(copy));
        if (!io)
            co_return io.error();
        recycle(std::move(io->buf));
        co_return count(io->res);
    }
    task<result<std::size_t>> write_at(std::span<const std::byte> buf, std::uint64_t offset) {
        return write_at(buf.data(), buf.size(), offset);
    }

    /// Writes all of `buf` at the position (looping over short writes) and advances it.
    task<result<void>> write_all(const void* buf, std::size_t len) {
        const auto* p = static_cast<const std::byte*>(buf);
        std::size_t done = 0;
        while (done < len) {
            auto r = co_await write(p + done, len - done);
            if (!r)
                co_return r.error();
            if (*r == 0)
                co_return std::make_error_code(std::errc::no_space_on_device);
            done += *r;
        }
        co_return result<void>{};
    }
    task<result<void>> write_all(std::span<const std::byte> buf) {
        return write_all(buf.data(), buf.size());
    }
    task<result<void>> write_all(std::string_view text) {
        return write_all(text.data(), text.size());
    }

    /// Flushes data and metadata to the device (fsync(2); IORING_OP_FSYNC natively).
    task<result<void>> fsync() { return sync(false); }
    /// Flushes data, and metadata only as needed to read it back (fdatasync(2);
    /// IORING_FSYNC_DATASYNC natively).
    task<result<void>> fdatasync() { return sync(true); }

    /// The file's metadata (statx of the fd).
    task<result<file_metadata>> metadata() {
        namespace dfs = eddy::detail::fs;
        if (std::error_code ec = unusable())
            co_return ec;
        if (native(dfs::file_op::statx)) {
            auto out =
                co_await dfs::native_statx(uring(), fd_->get(), std::string(), AT_EMPTY_PATH);
            co_return eddy::detail::fs::metadata_result(out);
        }
        eddy::detail::fs::owned_buffer no_buffer;
        auto io = co_await run_blocking(
            [](int fd, dfs::blocking_io& io) -> long {
                return ::statx(fd, "", AT_EMPTY_PATH, dfs::statx_mask, &io.stx) < 0 ? -errno : 0;
            },
            std::move(no_buffer));
        if (!io)
            co_return io.error();
        dfs::stat_out out{io->res, io->stx};
        recycle(std::move(io->buf));
        co_return eddy::detail::fs::metadata_result(out);
    }

    /// The file's size in bytes.
    task<result<std::uint64_t>> size() {
        auto m = co_await metadata();
        if (!m)
            co_return m.error();
        co_return m->size;
    }

    /// Truncates or extends the file to `len` bytes (ftruncate; on the blocking pool). The
    /// position is not moved.
    task<result<void>> set_len(std::uint64_t len) {
        namespace dfs = eddy::detail::fs;
        if (std::error_code ec = unusable())
            co_return ec;
        if (len > max_offset)
            co_return std::make_error_code(std::errc::invalid_argument);
        eddy::detail::fs::owned_buffer no_buffer;
        auto io = co_await run_blocking(
            [len](int fd, dfs::blocking_io& /*io*/) {
                return dfs::retry_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(len)); });
            },
            std::move(no_buffer));
        if (!io)
            co_return io.error();
        recycle(std::move(io->buf));
        if (io->res < 0)
            co_return dfs::errno_code(io->res);
        co_return result<void>{};
    }

    /// Closes the file and reports close(2)'s error. Afterwards the file is closed whatever the
    /// result (Linux releases the fd even when close fails). Closing a closed file does nothing.
    /// Cancelled, it still closes the fd. After the runtime shut down it closes synchronously.
    task<result<void>> close() {
        namespace dfs = eddy::detail::fs;
        if (!is_open())
            co_return result<void>{};
        co_await settle();
        // SAFETY: settle() waited for the last pool closure, so nothing uses the fd any more; a
        // closure frame that still holds the shared owner sees -1 and leaves it alone.
        dfs::unique_fd fd(fd_->release());
        fd_.reset();
        pos_ = 0;
        std::shared_ptr<eddy::detail::io_driver> d = std::move(driver_);
        long r = 0;
        if (d->is_shut_down()) {
            r = fd.close();
        } else if (dfs::runs_native(*d, dfs::file_op::close)) {
            dfs::native_close op(static_cast<eddy::detail::uring_driver&>(*d), fd.release());
            r = co_await op;
        } else {
            auto work = [owned = std::move(fd)]() mutable { return owned.close(); };
            auto out = co_await dfs::on_pool(std::move(work));
            if (!out)
                co_return out.error();
            r = *out;
        }
        if (r < 0)
            co_return dfs::errno_code(r);
        co_return result<void>{};
    }

    [[nodiscard]] bool is_open() const noexcept { return fd_ != nullptr && fd_->get() >= 0; }
    /// The fd, or -1 when closed. Do not close it; the file still owns it.
    [[nodiscard]] int native_handle() const noexcept { return is_open() ? fd_->get() : -1; }

    /// The offset `read` and `write` use next.
    [[nodiscard]] std::uint64_t position() const noexcept { return pos_; }
    /// Moves the position (like lseek(SEEK_SET); beyond the end is allowed).
    void set_position(std::uint64_t pos) noexcept { pos_ = pos; }
    [[nodiscard]] bool is_append() const noexcept { return append_; }

private:
    friend class open_options;

    static constexpr std::uint64_t max_offset =
        static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());

    file(std::shared_ptr<eddy::detail::io_driver> d, eddy::detail::fs::unique_fd fd, bool append)
        : driver_(std::move(d)),
          fd_(std::make_shared<eddy::detail::fs::unique_fd>(std::move(fd))),
          append_(append) {}

    /// Opens `p` with open(2) `flags` (see open_options).
    static task<result<file>> open_path(std::filesystem::path p, int flags, mode_t mode) {
        namespace dfs = eddy::detail::fs;
        if (p.empty())
            co_return eddy::detail::fs::invalid_path();
        auto d = eddy::detail::fs::usable_driver();
        if (!d)
            co_return d.error();
        dfs::unique_fd fd;
        if (dfs::runs_native(**d, dfs::file_op::open)) {
            const char* name = p.c_str(); // lives in this frame until the kernel is done
            const std::int32_t r = co_await dfs::native<eddy::detail::close_result_fd>(
                static_cast<eddy::detail::uring_driver&>(**d),
                [=](io_uring_sqe* sqe) { io_uring_prep_openat(sqe, AT_FDCWD, name, flags, mode); });
            if (r < 0)
                co_return dfs::errno_code(r);
            fd = dfs::unique_fd(r);
        } else {
            struct opened {
                dfs::unique_fd fd; // closed with the result if nobody takes it
                long res = 0;
            };
            auto work = [p, flags, mode] {
                opened o;
                o.res = dfs::retry_eintr([&] { return ::open(p.c_str(), flags, mode); });
                if (o.res >= 0)
                    o.fd = dfs::unique_fd(static_cast<int>(o.res));
                return o;
            };
            auto out = co_await dfs::on_pool(std::move(work));
            if (!out)
                co_return out.error();
            if (out->res < 0)
                co_return dfs::errno_code(out->res);
            fd = std::move(out->fd);
        }
        co_return file(eddy::detail::current_io_driver(), std::move(fd), (flags & O_APPEND) != 0);
    }

    [[nodiscard]] std::error_code unusable() const noexcept {
        if (!is_open())
            return std::make_error_code(std::errc::bad_file_descriptor);
        if (driver_->is_shut_down())
            return make_error_code(errc::shutdown);
        return {};
    }

    [[nodiscard]] bool native(eddy::detail::fs::file_op op) const noexcept {
        return eddy::detail::fs::runs_native(*driver_, op);
    }

    [[nodiscard]] eddy::detail::uring_driver& uring() const noexcept {
        return static_cast<eddy::detail::uring_driver&>(*driver_);
    }

    static result<std::size_t> count(long r) noexcept {
        if (r < 0)
            return eddy::detail::fs::errno_code(r);
        return static_cast<std::size_t>(r);
    }

    task<result<void>> sync(bool data_only) {
        namespace dfs = eddy::detail::fs;
        if (std::error_code ec = unusable())
            co_return ec;
        long r = 0;
        if (native(dfs::file_op::fsync)) {
            const int fd = fd_->get();
            const unsigned flags = data_only ? IORING_FSYNC_DATASYNC : 0U;
            r = co_await dfs::native(
                uring(), [=](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, flags); });
        } else {
            eddy::detail::fs::owned_buffer no_buffer;
            auto io = co_await run_blocking(
                [data_only](int fd, dfs::blocking_io& /*io*/) {
                    return dfs::retry_eintr(
                        [&] { return data_only ? ::fdatasync(fd) : ::fsync(fd); });
                },
                std::move(no_buffer));
            if (!io)
                co_return io.error();
            recycle(std::move(io->buf));
            r = io->res;
        }
        if (r < 0)
            co_return dfs::errno_code(r);
        co_return result<void>{};
    }

    /// The spare buffer, with room for `n` bytes.
    eddy::detail::fs::owned_buffer take_buffer(std::size_t n) {
        eddy::detail::fs::owned_buffer b = std::move(spare_);
        spare_ = {};
        b.reserve(n);
        return b;
    }

    /// Keeps the larger of `b` and the spare buffer for the next pool transfer.
    void recycle(eddy::detail::fs::owned_buffer b) noexcept {
        if (b.capacity > spare_.capacity)
            spare_ = std::move(b);
    }

    /// Waits for the pool operation a cancelled awaiter left behind, if any.
    task<void> settle() {
        if (!pending_.valid())
            co_return;
        try {
            eddy::detail::fs::blocking_io io = co_await pending_;
            recycle(std::move(io.buf));
        } catch (const join_error&) {
            // Refused by a pool that is shutting down: it never ran.
        }
        pending_ = {};
    }

    /// Runs `work(fd, io)` (a count or -errno; `io.buf` is `buf`) in the blocking pool's file lane,
    /// after the previous pool operation. The closure shares the fd's ownership (see the module
    /// comment).
    template <class Work>
    task<result<eddy::detail::fs::blocking_io>> run_blocking(Work work,
                                                             eddy::detail::fs::owned_buffer buf) {
        namespace dfs = eddy::detail::fs;
        co_await settle();
        pending_ = eddy::detail::spawn_file_op(
            [keep = fd_, work = std::move(work), buf = std::move(buf)]() mutable {
                // Dropped before the task completes (not with the closure's frame, which may
                // go later): once the join sees the result, the file is the fd's only owner
                // again, so destroying it closes the fd at once.
                const std::shared_ptr<dfs::unique_fd> owner = std::move(keep);
                dfs::blocking_io io;
                io.buf = std::move(buf);
                io.res = work(owner->get(), io);
                return io;
            });
        try {
            dfs::blocking_io io = co_await pending_;
            pending_ = {};
            co_return std::move(io);
        } catch (const join_error& e) {
            pending_ = {};
            co_return e.code();
        }
    }

    std::shared_ptr<eddy::detail::io_driver> driver_;
    std::shared_ptr<eddy::detail::fs::unique_fd> fd_;    ///< shared with running pool closures
    join_handle<eddy::detail::fs::blocking_io> pending_; ///< the last pool operation, if unjoined
    eddy::detail::fs::owned_buffer spare_;               ///< reused by pool reads and writes
    std::uint64_t pos_ = 0;
    bool append_ = false;
};

inline task<result<file>> open_options::open(std::filesystem::path path) const {
    auto f = flags();
    if (!f)
        return eddy::detail::fs::failed<file>(f.error());
    return file::open_path(std::move(path), *f, mode_);
}

// ---- whole files ---------------------------------------------------------------------------

} // namespace eddy::fs

namespace eddy::detail::fs {

/// The size of the last file this thread read whole on the blocking pool: the guess for the
/// next one's buffer, which is allocated before the closure runs (see `read_whole`).
inline thread_local std::size_t last_whole_read = 0;
/// The largest buffer allocated on a guess.
inline constexpr std::size_t max_whole_read_guess = std::size_t{1} << 20;

/// `read_file` / `read_to_string`: natively when the backend has OPENAT and READ, else what the
/// caches answer on this thread (`read_inline`) and the rest in one blocking closure. Natively: an
/// OPENAT, an fstat(2) for the size (see `whole_read_plan`: a regular file whose size is known
/// takes a single READ), READs until the end, and close(2) on the worker: a read-only descriptor
/// has no dirty data to flush, so its close does not wait for the device, and a CLOSE operation
/// would cost another trip through the ring.
///
/// Cancellation: the READ in flight is cancelled in the kernel (its buffer lives until the
/// kernel is done) and the fd is closed; an OPENAT completed anyway closes its fd. The part on
/// this thread has no suspension point; a blocking closure owns the fd and buffer it continues
/// with, and closes the fd when it is done or dropped.
template <class Bytes>
task<result<Bytes>> read_whole(std::filesystem::path p) {
    namespace dfs = eddy::detail::fs;
    if (p.empty())
        co_return invalid_path();
    auto d = usable_driver();
    if (!d)
        co_return d.error();
    if (!dfs::runs_native(**d, dfs::file_op::open) || !dfs::runs_native(**d, dfs::file_op::read)) {
        if (dfs::may_read_inline()) {
            // No suspension on the way when the caches answer: spend budget instead, so a task
            // that reads cached files in a loop still lets the others on its worker run.
            if (!eddy::detail::coop::try_consume())
                co_await eddy::yield_now();
            inline_read<Bytes> r = read_inline<Bytes>(p);
            using next = typename inline_read<Bytes>::next;
            if (r.step == next::done)
                co_return std::move(r.contents);
            if (r.step == next::finish_on_pool) {
                auto work = [fd = std::move(r.fd), out = std::move(r.out), filled = r.filled,
                             plan = r.plan]() mutable {
                    // Opened with O_NONBLOCK (see `open_cached`): clear it, reads may wait here.
                    (void)::fcntl(fd.get(), F_SETFL, 0);
                    return finish_read_sync(std::move(fd), std::move(out), filled, plan);
                };
                co_return co_await on_pool_flat(std::move(work));
            }
        }
        // The buffer is allocated here, on the runtime thread that will most likely free it:
        // a buffer malloc'ed on a pool thread and freed on a runtime thread goes back to the pool
        // thread's arena, which glibc trims, so every read started on freshly faulted pages.
        Bytes buf;
        buf.reserve(std::min(last_whole_read, max_whole_read_guess) + 1);
        auto work = [p = std::move(p), buf = std::move(buf)]() mutable {
            return read_whole_sync<Bytes>(p, std::move(buf));
        };
        auto r = co_await dfs::on_pool(std::move(work));
        if (!r)
            co_return r.error();
        if (!*r)
            co_return (*r).error();
        Bytes out = std::move(**r);
        last_whole_read = out.size();
        if (out.capacity() / 2 > out.size() + 4096)
            out.shrink_to_fit(); // the guess was far too large
        co_return std::move(out);
    }
    auto& ring = static_cast<eddy::detail::uring_driver&>(**d);
    const char* name = p.c_str(); // lives in this frame until the kernel is done
    const std::int32_t opened =
        co_await dfs::native<eddy::detail::close_result_fd>(ring, [=](io_uring_sqe* sqe) {
            io_uring_prep_openat(sqe, AT_FDCWD, name, O_RDONLY | O_CLOEXEC, 0);
        });
    if (opened < 0)
        co_return dfs::errno_code(opened);
    dfs::unique_fd fd(opened);
    const whole_read_plan plan = plan_whole_read(fd.get());
    Bytes out;
    out.resize(plan.first_capacity());
    std::size_t filled = 0;
    for (;;) {
        if (filled == out.size())
            out.resize(whole_read_plan::grown(out.size()));
        if (ring.is_shut_down())
            co_return errc::shutdown;
        const int raw = fd.get();
        void* buf = out.data() + filled;
        const auto asked =
            static_cast<unsigned>(std::min(out.size() - filled, dfs::max_native_transfer));
        const std::uint64_t offset = filled;
        const std::int32_t n = co_await dfs::native(
            ring, [=](io_uring_sqe* sqe) { io_uring_prep_read(sqe, raw, buf, asked, offset); });
        if (n < 0)
            co_return dfs::errno_code(n);
        if (n == 0)
            break;
        filled += static_cast<std::size_t>(n);
        if (plan.ended(filled, static_cast<std::size_t>(n), asked))
            break;
    }
    out.resize(filled);
    if (const long c = fd.close(); c < 0)
        co_return dfs::errno_code(c);
    co_return std::move(out);
}

} // namespace eddy::detail::fs

namespace eddy::fs {

/// The whole contents of `path`.
inline task<result<std::vector<std::byte>>> read_file(std::filesystem::path path) {
    return eddy::detail::fs::read_whole<std::vector<std::byte>>(std::move(path));
}

/// The whole contents of `path` as text (bytes as they are; no encoding check).
inline task<result<std::string>> read_to_string(std::filesystem::path path) {
    return eddy::detail::fs::read_whole<std::string>(std::move(path));
}

/// Creates or truncates `path` and writes `data` to it, then closes it (reporting close's
/// error). `data` is read until the call completes (copied first on the blocking pool).
inline task<result<void>> write_file(std::filesystem::path path, std::span<const std::byte> data) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        co_return eddy::detail::fs::invalid_path();
    auto d = eddy::detail::fs::usable_driver();
    if (!d)
        co_return d.error();
    if (!dfs::runs_native(**d, dfs::file_op::open) || !dfs::runs_native(**d, dfs::file_op::write)) {
        auto work = [p = std::move(path),
                     bytes = std::vector<std::byte>(data.begin(), data.end())] {
            return eddy::detail::fs::write_whole_sync(p, bytes);
        };
        co_return co_await eddy::detail::fs::on_pool_flat(std::move(work));
    }
    auto f = co_await file::create(std::move(path));
    if (!f)
        co_return f.error();
    if (auto w = co_await f->write_all(data); !w)
        co_return w.error();
    co_return co_await f->close();
}
inline task<result<void>> write_file(std::filesystem::path path, std::string_view text) {
    return write_file(std::move(path), std::as_bytes(std::span<const char>(text)));
}

// ---- metadata ------------------------------------------------------------------------------

/// Metadata of `path`, following symlinks.
inline task<result<file_metadata>> metadata(std::filesystem::path path) {
    return eddy::detail::fs::stat_path(std::move(path), 0);
}

/// Metadata of `path` itself (a symlink is reported as a symlink).
inline task<result<file_metadata>> symlink_metadata(std::filesystem::path path) {
    return eddy::detail::fs::stat_path(std::move(path), AT_SYMLINK_NOFOLLOW);
}

/// Whether `path` exists (following symlinks): false for ENOENT/ENOTDIR, an error otherwise.
inline task<result<bool>> exists(std::filesystem::path path) {
    auto m = co_await metadata(std::move(path));
    if (m)
        co_return true;
    if (m.error() == std::errc::no_such_file_or_directory ||
        m.error() == std::errc::not_a_directory)
        co_return false;
    co_return m.error();
}

// ---- directories and names (on the blocking pool) ------------------------------------------
// (Plain functions returning the pool's task: the closures are not created inside a co_await;
// see the GCC 12 note in detail/fs/ops.hpp.)

/// Creates the directory `path` (its parent must exist; `file_exists` if it does).
inline task<result<void>> create_dir(std::filesystem::path path) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat(
        [p = std::move(path)] { return dfs::errno_if(::mkdir(p.c_str(), 0777) < 0); });
}

/// Creates `path` and every missing parent; fine if it already exists as a directory.
inline task<result<void>> create_dir_all(std::filesystem::path path) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat([p = std::move(path)] {
        std::error_code ec;
        std::filesystem::create_directories(p, ec);
        return dfs::as_result(ec);
    });
}

/// Removes a file, a symlink or an empty directory (ENOTEMPTY for a non-empty one).
inline task<result<void>> remove(std::filesystem::path path) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat([p = std::move(path)] {
        if (::unlink(p.c_str()) == 0)
            return result<void>{};
        // Linux reports EISDIR for a directory (EPERM on some filesystems).
        if (errno != EISDIR && errno != EPERM)
            return result<void>(last_system_error());
        return dfs::errno_if(::rmdir(p.c_str()) < 0);
    });
}

/// Removes `path` and, if it is a directory, everything in it (symlinks are not followed).
inline task<result<void>> remove_dir_all(std::filesystem::path path) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat([p = std::move(path)] {
        struct stat st {};
        if (::lstat(p.c_str(), &st) < 0)
            return result<void>(last_system_error());
        std::error_code ec;
        std::filesystem::remove_all(p, ec);
        return dfs::as_result(ec);
    });
}

/// Renames `from` to `to`, replacing `to` if it exists (rename(2) rules).
inline task<result<void>> rename(std::filesystem::path from, std::filesystem::path to) {
    namespace dfs = eddy::detail::fs;
    if (from.empty() || to.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat([f = std::move(from), t = std::move(to)] {
        return dfs::errno_if(::rename(f.c_str(), t.c_str()) < 0);
    });
}

/// Copies the contents and permissions of the file `from` to `to`, replacing `to`.
inline task<result<void>> copy_file(std::filesystem::path from, std::filesystem::path to) {
    namespace dfs = eddy::detail::fs;
    if (from.empty() || to.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat([f = std::move(from), t = std::move(to)] {
        std::error_code ec;
        std::filesystem::copy_file(f, t, std::filesystem::copy_options::overwrite_existing, ec);
        return dfs::as_result(ec);
    });
}

/// Creates a symlink at `link` pointing to `target`.
inline task<result<void>> symlink(std::filesystem::path target, std::filesystem::path link) {
    namespace dfs = eddy::detail::fs;
    if (target.empty() || link.empty())
        return dfs::failed<void>(dfs::invalid_path());
    return dfs::on_pool_flat([t = std::move(target), l = std::move(link)] {
        return dfs::errno_if(::symlink(t.c_str(), l.c_str()) < 0);
    });
}

/// The absolute path of `path` with every symlink, "." and ".." resolved (it must exist).
inline task<result<std::filesystem::path>> canonicalize(std::filesystem::path path) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        return dfs::failed<std::filesystem::path>(dfs::invalid_path());
    return dfs::on_pool_flat([p = std::move(path)]() -> result<std::filesystem::path> {
        std::error_code ec;
        auto c = std::filesystem::canonical(p, ec);
        if (ec)
            return ec;
        return c;
    });
}

/// The entries of the directory `path` (without "." and ".."), sorted by name.
inline task<result<std::vector<dir_entry>>> read_dir(std::filesystem::path path) {
    namespace dfs = eddy::detail::fs;
    if (path.empty())
        return dfs::failed<std::vector<dir_entry>>(dfs::invalid_path());
    return dfs::on_pool_flat([p = std::move(path)]() -> result<std::vector<dir_entry>> {
        std::error_code ec;
        std::filesystem::directory_iterator it(p, ec);
        if (ec)
            return ec;
        std::vector<dir_entry> out;
        for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
            if (ec)
                return ec;
            std::error_code type_ec;
            const auto status = it->symlink_status(type_ec);
            out.push_back(dir_entry{it->path(),
                                    type_ec ? std::filesystem::file_type::unknown : status.type()});
        }
        if (ec)
            return ec;
        std::sort(out.begin(), out.end(), [](const dir_entry& a, const dir_entry& b) {
            return a.path.filename() < b.path.filename();
        });
        return out;
    });
}

} // namespace eddy::fs
