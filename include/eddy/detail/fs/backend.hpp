#pragma once
//! Where a file operation runs: natively on the io_uring ring, or on the blocking pool. This is
//! the only place that decides (`runs_native`); every operation in eddy/fs.hpp asks it once.
//!
//! - epoll runtimes: always the blocking pool. Regular files are always "ready" to epoll, so a
//!   read that misses the page cache would stall a worker; a pool thread absorbs that instead.
//! - io_uring runtimes: natively when the kernel supports the opcode, else the blocking pool for
//!   that operation alone. The file opcodes (OPENAT, CLOSE, STATX: Linux 5.6; FSYNC: 5.1; READ
//!   and WRITE are required by the driver anyway) are probed once per process, separately from
//!   the driver's own probe: a kernel without them still gets the io_uring driver for sockets
//!   rather than falling back to epoll for everything.
//!
//! - Whole-file reads (`read_file`, `read_to_string`) that would go to the blocking pool first
//!   try on the calling worker what cannot wait for the device (`may_read_inline`): an open whose
//!   path lookup the dentry cache answers (openat2 RESOLVE_CACHED) and reads the page cache
//!   answers (preadv2 RWF_NOWAIT), as io_uring itself does before it hands an operation to its
//!   workers. Whatever would wait goes to the pool. Kernels without RESOLVE_CACHED (before 5.12)
//!   are recognized at the first attempt, and everything then goes to the pool.
//!
//! Any thread may call these functions.

#include <eddy/config.hpp>

#include <eddy/io_backend.hpp>

#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/sync/atomic.hpp>

#include <liburing.h>

#include <cstddef>

namespace eddy::detail::fs {

/// The file operations that have an io_uring opcode.
enum class file_op : unsigned { open, close, read, write, fsync, statx };

inline constexpr std::size_t file_op_count = 6;

/// The io_uring opcode of each `file_op`, in enum order.
inline constexpr int file_op_opcodes[file_op_count] = {
    IORING_OP_OPENAT, IORING_OP_CLOSE, IORING_OP_READ,
    IORING_OP_WRITE,  IORING_OP_FSYNC, IORING_OP_STATX,
};

constexpr unsigned file_op_bit(file_op op) noexcept {
    return 1U << static_cast<unsigned>(op);
}

/// The `file_op`s the kernel's io_uring supports, as a mask of `file_op_bit`s (0 when io_uring
/// cannot be set up at all). Probed once, on a small ring of its own.
inline unsigned native_file_ops() noexcept {
    static const unsigned mask = [] {
        io_uring_probe* probe = io_uring_get_probe();
        if (probe == nullptr)
            return 0U;
        unsigned m = 0;
        for (std::size_t i = 0; i < file_op_count; ++i) {
            if (io_uring_opcode_supported(probe, file_op_opcodes[i]) != 0)
                m |= 1U << i;
        }
        io_uring_free_probe(probe);
        return m;
    }();
    return mask;
}

/// Test hook: the `file_op_bit`s set here run on the blocking pool even on io_uring, as on a
/// kernel that lacks those opcodes.
inline atomic<unsigned> native_file_ops_disabled{0};

/// Whether `op` runs natively on `driver` (see the module comment).
inline bool runs_native(const io_driver& driver, file_op op) noexcept {
    if (driver.kind() != io_backend::io_uring)
        return false;
    const unsigned bit = file_op_bit(op);
    // ORDERING: relaxed: a test flips the hook while no operation runs.
    return (native_file_ops() & bit) != 0 &&
           (native_file_ops_disabled.load(memory_order_relaxed) & bit) == 0;
}

/// Cleared when openat2 with RESOLVE_CACHED turned out unavailable (ENOSYS, or EINVAL from a
/// kernel that does not know the flag): whole-file reads then go straight to the pool.
inline atomic<bool> cached_open_available{true};

/// Test hook: set, whole-file reads go straight to the pool, as on a kernel without
/// RESOLVE_CACHED.
inline atomic<bool> inline_reads_disabled{false};

/// Whether a whole-file read on the blocking pool tries the worker first (see the module comment).
inline bool may_read_inline() noexcept {
    // ORDERING: relaxed: a hint; a stale value costs one failed attempt or one pool trip.
    return cached_open_available.load(memory_order_relaxed) &&
           !inline_reads_disabled.load(memory_order_relaxed);
}

} // namespace eddy::detail::fs
