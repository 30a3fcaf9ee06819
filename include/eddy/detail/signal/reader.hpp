#pragma once
//! The per-runtime half of `eddy::signal`: a reader task that turns self-pipe bytes into wakes,
//! driven by the runtime's I/O driver.
//!
//! Each runtime in which a `listener::recv` suspends gets one reader (spawned lazily, by the
//! first such recv, through `ensure_reader`). It loops: wait until the pipe is readable, drain
//! it, `notify_all()`. Since wakers may be woken from any thread, whichever reader consumes a
//! byte wakes the waiters of every runtime; each runtime has its own only so that signals are
//! seen for as long as any runtime with waiters runs.
//!
//! Waiting, per backend. The pipe's read end is shared and must stay non-blocking (see
//! handler.hpp: O_NONBLOCK is a property of the open file description, which `dup` shares, and
//! `io_source::adopt` puts an fd in the mode its backend wants):
//!  - epoll: a duplicate of the read end is adopted as an `io_source` (already non-blocking, as
//!    epoll wants) and read with `detail::read`, which waits for readiness on EAGAIN.
//!  - io_uring: adopting would make the shared description blocking, and the epoll readers of
//!    other runtimes would then block their workers in read(2). So the reader submits a one-shot
//!    IORING_OP_POLL_ADD (POLLIN) on the read end to the runtime's ring and drains the pipe with
//!    non-blocking reads once it completes.
//! Several readers may wake for the same bytes; one drains them, the others read nothing. Either
//! way `notify_all` is idempotent: it wakes only waiters that are behind.
//!
//! Lifetime (invariant 6). A registry maps each runtime (`runtime_core*`) to the ticket of its
//! reader. The ticket is a parameter of the reader coroutine, so it lives in the frame and its
//! destructor removes the entry whenever the frame is destroyed: when the runtime shuts down
//! (which cancels every task, this one included, even if it never ran), or if spawning it failed.
//! The reader therefore never keeps a runtime alive or running (it is an ordinary detached task
//! that shutdown cancels; an io_uring poll in flight is cancelled by its operation's destructor)
//! and leaves nothing behind. Tickets carry a serial number, so a new runtime allocated at a dead
//! one's address is never mistaken for it. The registry itself is allocated once and never freed
//! (a runtime may outlive static destruction).

#include <eddy/config.hpp>

#include <eddy/io_backend.hpp>
#include <eddy/result.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/io/ops.hpp>
#include <eddy/detail/io/source.hpp>
#include <eddy/detail/io/uring_driver.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/signal/handler.hpp>
#include <eddy/detail/signal/waiters.hpp>

#include <liburing.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace eddy::detail::signal {

/// Which runtimes have a reader (see the module comment).
class reader_registry {
public:
    static reader_registry& instance() {
        static auto* registry = new reader_registry; // never freed: see the module comment
        return *registry;
    }

    /// Registers a reader for `rt`: its ticket serial, or 0 if `rt` has one already.
    std::uint64_t claim(runtime_core* rt) {
        std::lock_guard guard(lock_);
        for (const entry& e : entries_) {
            if (e.runtime == rt)
                return 0;
        }
        const std::uint64_t serial = next_serial_++;
        entries_.push_back({rt, serial});
        return serial;
    }

    /// Removes `rt`'s entry if it is still the one `serial` registered.
    void drop(runtime_core* rt, std::uint64_t serial) noexcept {
        std::lock_guard guard(lock_);
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            if (entries_[i].runtime == rt && entries_[i].serial == serial) {
                entries_[i] = entries_.back();
                entries_.pop_back();
                return;
            }
        }
    }

    /// Runtimes with a reader now (tests and diagnostics).
    [[nodiscard]] std::size_t size() {
        std::lock_guard guard(lock_);
        return entries_.size();
    }

private:
    struct entry {
        runtime_core* runtime;
        std::uint64_t serial;
    };

    reader_registry() = default;

    std::mutex lock_;
    std::vector<entry> entries_;
    std::uint64_t next_serial_ = 1;
};

/// A runtime's claim on its reader; releasing it (destruction) frees the runtime's entry.
class reader_ticket {
public:
    reader_ticket(runtime_core* rt, std::uint64_t serial) noexcept : rt_(rt), serial_(serial) {}
    reader_ticket(reader_ticket&& other) noexcept
        : rt_(std::exchange(other.rt_, nullptr)), serial_(other.serial_) {}
    reader_ticket& operator=(reader_ticket&&) = delete;
    reader_ticket(const reader_ticket&) = delete;
    reader_ticket& operator=(const reader_ticket&) = delete;
    ~reader_ticket() {
        if (rt_ != nullptr)
            reader_registry::instance().drop(rt_, serial_);
    }

private:
    runtime_core* rt_;
    std::uint64_t serial_;
};

/// What a reader waits on: an adopted duplicate of the read end (epoll), or the ring (io_uring).
struct reader_source {
    io_source pipe;                     ///< epoll: the duplicate, read through detail::read
    std::shared_ptr<io_driver> uring{}; ///< io_uring: the ring to poll the shared read end on
};

/// Waits until `fd` is readable with a one-shot IORING_OP_POLL_ADD. Cancel-safe (the poll is
/// cancelled by the operation's destructor).
inline task<result<void>> uring_poll_readable(io_driver& d, int fd) {
    if (d.is_shut_down())
        co_return errc::shutdown;
    auto prep = [fd](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, fd, POLLIN); };
    uring_op<decltype(prep)> op(static_cast<uring_driver&>(d), prep);
    const std::int32_t r = co_await op;
    if (r < 0)
        co_return system_error_code(r);
    co_return result<void>{};
}

/// Reads whatever the (non-blocking) pipe holds.
inline void drain_pipe(int fd) noexcept {
    std::array<char, 256> buf{};
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return; // EAGAIN: empty (or taken by another reader)
    }
}

/// The reader task of one runtime (see the module comment). `ticket` lives in the frame.
inline task<> read_loop([[maybe_unused]] reader_ticket ticket, reader_source src) {
    const int shared_fd = pipe_read_fd();
    std::array<char, 256> buf{};
    for (;;) {
        std::error_code ec;
        if (src.uring) {
            auto r = co_await uring_poll_readable(*src.uring, shared_fd);
            if (r) {
                drain_pipe(shared_fd);
            } else {
                ec = r.error();
            }
        } else {
            auto n = co_await eddy::detail::read(src.pipe, buf.data(), buf.size());
            if (!n) {
                ec = n.error();
            } else if (*n == 0) {
                ec = std::make_error_code(std::errc::broken_pipe); // cannot happen: never closed
            }
        }
        if (ec == errc::shutdown)
            co_return;
        if (ec && ec != std::errc::interrupted) {
            // Not expected on a pipe eddy owns; retry a little later rather than spin. Waiters
            // stay registered and lose nothing: the counters keep every delivery.
            co_await eddy::sleep(std::chrono::milliseconds(10));
            continue;
        }
        notify_all();
    }
}

/// Opens what the current runtime's reader waits on.
inline result<reader_source> open_reader_source(runtime_core& rt) {
    const std::shared_ptr<io_driver>& d = rt.io_shared();
    if (d->kind() == io_backend::io_uring)
        return reader_source{io_source{}, d};
    const int fd = ::fcntl(pipe_read_fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return last_system_error();
    result<io_source> s = io_source::adopt(fd); // non-blocking already: the mode is unchanged
    if (!s)
        return s.error();
    return reader_source{std::move(*s), nullptr};
}

/// Makes sure the calling thread's runtime has a reader, spawning it if not. Throws
/// `std::logic_error` outside a runtime; returns the system error if the pipe cannot be
/// duplicated. Call after a handler was installed (the pipe exists).
inline std::error_code ensure_reader() {
    runtime_core* rt = context().runtime;
    if (rt == nullptr) {
        throw std::logic_error(
            "eddy::signal: recv must be awaited inside a task of an eddy runtime");
    }
    const std::uint64_t serial = reader_registry::instance().claim(rt);
    if (serial == 0)
        return {};
    // From here the ticket owns the entry: any early return (or throw) below drops it, and once
    // it is in the reader's frame, the frame's destruction does. The registry lock is not held:
    // a spawn refused by a shut-down runtime destroys the frame (and so drops it) on the spot.
    reader_ticket ticket(rt, serial);
    result<reader_source> src = open_reader_source(*rt);
    if (!src)
        return src.error();
    (void)spawn_on(*rt, read_loop(std::move(ticket), std::move(*src))); // detached
    return {};
}

/// Runtimes with a reader now (tests and diagnostics).
[[nodiscard]] inline std::size_t reader_count() {
    return reader_registry::instance().size();
}

} // namespace eddy::detail::signal
