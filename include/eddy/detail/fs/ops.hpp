#pragma once
//! The building blocks of eddy/fs.hpp: an owned fd, the buffers blocking closures own, and the
//! two ways an operation runs (see backend.hpp for which one is chosen).
//!
//! Native (io_uring): `native` awaits one operation through `uring_op` (eddy/detail/io/ops.hpp),
//! so a cancelled operation's memory (the buffer, the path, the statx record) stays valid until
//! the kernel is done with it. `native_close` is its own awaiter because a CLOSE withdrawn
//! before the kernel saw it must still close the fd.
//!
//! Blocking pool: `on_pool` runs a closure as a job of the pool's file lane (`spawn_file_op`) and
//! awaits it. The closure must
//! own everything it touches (captures by value, buffers of its own): if the awaiting task is
//! cancelled, the closure may already be running and then runs to the end, after the awaiter's
//! frame is gone. Results that hold a resource (an opened fd) release it in their destructor, so
//! a result nobody takes does not leak.

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>
#include <eddy/result.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/io/ops.hpp>
#include <eddy/detail/io/uring_driver.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace eddy::detail::fs {

/// The most one io_uring READ/WRITE moves (the kernel's MAX_RW_COUNT; the SQE length is 32-bit).
inline constexpr std::size_t max_native_transfer = 0x7ffff000;

/// The most one blocking-pool read or write moves: its bytes are copied through a buffer the
/// closure owns, so a huge request is split rather than doubled in memory.
inline constexpr std::size_t max_pool_transfer = std::size_t{2} << 20;

/// An fd closed on destruction.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) {
            (void)close();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { (void)close(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes now; 0 or -errno. The fd is released even when close reports an error (Linux).
    long close() noexcept {
        if (fd_ < 0)
            return 0;
        return ::close(std::exchange(fd_, -1)) < 0 && errno != EINTR ? -errno : 0;
    }

private:
    int fd_ = -1;
};

/// A heap buffer that moves between a file and the blocking closures that fill or drain it.
struct owned_buffer {
    std::unique_ptr<std::byte[]> data;
    std::size_t capacity = 0;

    /// Makes room for `n` bytes (the contents are not kept).
    void reserve(std::size_t n) {
        if (capacity < n) {
            data.reset();
            data = std::make_unique_for_overwrite<std::byte[]>(n);
            capacity = n;
        }
    }
};

/// What a blocking file operation hands back: a count or -errno, the buffer it used, and the
/// statx record of a metadata query.
struct blocking_io {
    long res = 0;
    owned_buffer buf;
    struct statx stx {};
};

/// A statx record and the call's result (0 or -errno).
struct stat_out {
    long res = 0;
    struct statx stx {};
};

/// The fields of `stat_out::stx` eddy reads.
inline constexpr unsigned statx_mask = STATX_BASIC_STATS | STATX_BTIME;

/// Repeats a system call interrupted by a signal; a count or -errno.
template <class F>
long retry_eintr(F f) noexcept {
    for (;;) {
        const long r = f();
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

inline std::error_code errno_code(long negative_errno) noexcept {
    return {static_cast<int>(-negative_errno), std::system_category()};
}

/// Opens `path` read-only (close-on-exec) if that needs no device I/O: the dentry cache must
/// resolve the whole path (openat2's RESOLVE_CACHED, else -EAGAIN), and O_NONBLOCK keeps the
/// open of a FIFO or a device from waiting for its other end. The fd or -errno; -ENOSYS or
/// -EINVAL from a kernel without openat2 (before 5.6) or RESOLVE_CACHED (before 5.12).
inline int open_cached(const char* path) noexcept {
#if defined(SYS_openat2) && defined(RESOLVE_CACHED)
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    how.resolve = RESOLVE_CACHED;
    return static_cast<int>(
        retry_eintr([&] { return ::syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how); }));
#else
    (void)path;
    return -ENOSYS;
#endif
}

/// One read at the file position of what the page cache holds (preadv2 with RWF_NOWAIT): a
/// count (short when the rest is not cached), 0 at the end, -EAGAIN when the first byte is not
/// cached, -EOPNOTSUPP where the file cannot read without waiting (procfs and the like).
inline long read_cached(int fd, void* buf, std::size_t len) noexcept {
    iovec iov{buf, len};
    return retry_eintr([&] { return ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT); });
}

// GCC 12 destroys twice a closure or braced aggregate that is created inside a `co_await`
// operand (`co_await on_pool([s] {...})` frees `s` twice). Callers name such arguments first:
// `auto work = [s] {...}; co_await on_pool(std::move(work));`.

/// Runs `f` in the file lane of the current runtime's blocking pool and awaits its value. A closure
/// the pool refused (the runtime is shutting down) gives `errc::cancelled`. See the module comment
/// for what `f` may touch.
template <class F>
task<result<std::invoke_result_t<F&>>> on_pool(F f) {
    auto h = eddy::detail::spawn_file_op(std::move(f));
    try {
        co_return co_await h;
    } catch (const join_error& e) {
        co_return e.code();
    }
}

/// Awaits one io_uring operation prepared by `prep`; the CQE's result (a count or -errno).
/// `Discard` releases the result of an operation that completed after its awaiter was
/// cancelled (the fd of an OPENAT).
template <class Discard = keep_result, class Prep>
task<std::int32_t> native(uring_driver& driver, Prep prep) {
    uring_op<Prep, Discard> op(driver, std::move(prep));
    co_return co_await op;
}

/// IORING_OP_STATX of `path` relative to `dirfd`. The record and the path live in this frame,
/// which (as `native` guarantees) outlives the kernel's use of them.
inline task<stat_out> native_statx(uring_driver& driver, int dirfd, std::string path, int flags) {
    stat_out out;
    struct statx* stx = &out.stx;
    const char* name = path.c_str();
    uring_op op(driver, [=](io_uring_sqe* sqe) {
        io_uring_prep_statx(sqe, dirfd, name, flags, statx_mask, stx);
    });
    out.res = co_await op;
    co_return out;
}

/// IORING_OP_CLOSE of `fd`, which the awaiter owns from construction. Destroyed before the
/// kernel ran the close (cancelled while queued, or never awaited), it closes `fd` itself, so
/// the fd is closed exactly once whatever happens; closed by the kernel, it is not touched again.
class native_close {
public:
    native_close(uring_driver& d, int fd) noexcept : driver_(d), fd_(fd) {}
    native_close(const native_close&) = delete;
    native_close& operator=(const native_close&) = delete;
    ~native_close() {
        // ORDERING: acquire pairs with the driver's release of DONE (res is published with it).
        if (completion_.state.load(memory_order_acquire) == uring_completion::pending)
            driver_.cancel(completion_);
        if (resumed_)
            return;
        const std::uint32_t s = completion_.state.load(memory_order_acquire);
        // -ECANCELED: withdrawn before submission or cancelled before it ran. close(2) itself
        // never reports ECANCELED, so the fd is still open.
        if (s == uring_completion::idle ||
            (s == uring_completion::done && completion_.res == -ECANCELED))
            ::close(fd_);
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> h) {
        completion_.waker = current_waker(h).release();
        const int fd = fd_;
        driver_.submit(completion_, [fd](io_uring_sqe* sqe) { io_uring_prep_close(sqe, fd); });
    }

    [[nodiscard]] std::int32_t await_resume() noexcept {
        resumed_ = true;
        return completion_.res;
    }

private:
    uring_driver& driver_;
    int fd_;
    uring_completion completion_;
    bool resumed_ = false;
};

} // namespace eddy::detail::fs
