#pragma once
//! `io_source`: an fd owned by a socket (or pipe), tied to the I/O driver of the runtime it was
//! created in.
//!
//! The fd's mode follows the backend: non-blocking on epoll (operations try the call first),
//! blocking on io_uring (the kernel then waits inside the operation on every kernel version,
//! instead of failing it with EAGAIN).
//!
//! Epoll registration is lazy: the fd is registered the first time an operation would block. So
//! a socket that never waits costs no epoll_ctl, and a connecting socket is registered only after
//! `connect()` started (an unconnected TCP socket reports EPOLLHUP, which would otherwise mark it
//! closed). Registering adds the fd edge-triggered, and epoll reports the readiness it has at
//! that moment, so nothing that became ready before is missed. Two tasks using the two halves of
//! one socket may race to register; `registration_lock_` makes it happen once.

#include <eddy/config.hpp>

#include <eddy/result.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/io/epoll_driver.hpp>
#include <eddy/detail/io/uring_driver.hpp>
#include <eddy/detail/scheduler/runtime_core.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>

#include <cerrno>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace eddy::detail {

/// The I/O driver of the runtime the calling thread belongs to. Throws `std::logic_error` on a
/// thread outside any runtime.
inline const std::shared_ptr<io_driver>& current_io_driver() {
    runtime_core* rt = context().runtime;
    if (rt == nullptr) {
        throw std::logic_error(
            "eddy: sockets must be created inside a runtime (a task, or a thread of its "
            "blocking pool)");
    }
    return rt->io_shared();
}

class io_source {
public:
    io_source() noexcept = default;

    /// Takes ownership of `fd` for the current runtime's driver and puts it in the backend's
    /// mode. On failure the fd is closed and the error returned.
    static result<io_source> adopt(int fd) {
        io_source s(current_io_driver(), fd);
        if (std::error_code ec = set_blocking(fd, s.completion_based()))
            return ec;
        return s;
    }

    /// A new socket in the mode the current runtime's backend wants.
    static result<io_source> open_socket(int domain, int type, int protocol) {
        const std::shared_ptr<io_driver>& d = current_io_driver();
        const bool nonblocking = d->kind() == io_backend::epoll;
        const int fd =
            ::socket(domain, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), protocol);
        if (fd < 0)
            return last_system_error();
        return io_source(d, fd);
    }

    io_source(io_source&& other) noexcept
        : driver_(std::move(other.driver_)),
          fd_(std::exchange(other.fd_, -1)),
          registered_(other.registered_.exchange(nullptr, memory_order_relaxed)),
          send_buffer_full_(other.send_buffer_full_.load(memory_order_relaxed)) {}

    io_source& operator=(io_source&& other) noexcept {
        if (this != &other) {
            (void)close();
            driver_ = std::move(other.driver_);
            fd_ = std::exchange(other.fd_, -1);
            registered_.store(other.registered_.exchange(nullptr, memory_order_relaxed),
                              memory_order_relaxed);
            send_buffer_full_.store(other.send_buffer_full_.load(memory_order_relaxed),
                                    memory_order_relaxed);
        }
        return *this;
    }

    io_source(const io_source&) = delete;
    io_source& operator=(const io_source&) = delete;

    ~io_source() { (void)close(); }

    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] io_driver& driver() const noexcept { return *driver_; }
    [[nodiscard]] bool completion_based() const noexcept {
        return driver_->kind() == io_backend::io_uring;
    }
    [[nodiscard]] uring_driver& uring() const noexcept {
        return static_cast<uring_driver&>(*driver_);
    }

    /// The epoll registration, if the fd was registered already.
    [[nodiscard]] scheduled_io* registration() const noexcept {
        // ORDERING: acquire pairs with register_now's release.
        return registered_.load(memory_order_acquire);
    }

    /// The epoll registration, registering the fd now if needed.
    scheduled_io* register_now(std::error_code& ec) {
        if (scheduled_io* io = registration())
            return io;
        std::lock_guard lock(registration_lock_);
        if (scheduled_io* io = registered_.load(memory_order_relaxed))
            return io;
        scheduled_io* io = static_cast<epoll_driver&>(*driver_).register_fd(fd_, ec);
        if (io != nullptr)
            registered_.store(io, memory_order_release);
        return io;
    }

    /// io_uring, stream sockets: whether the last send was short, i.e. filled the send buffer.
    /// A hint only: the next send then waits for room before it tries (see `io_operation`).
    [[nodiscard]] bool send_buffer_full() const noexcept {
        return send_buffer_full_.load(memory_order_relaxed);
    }
    void note_send(bool short_send) noexcept {
        if (send_buffer_full_.load(memory_order_relaxed) != short_send)
            send_buffer_full_.store(short_send, memory_order_relaxed);
    }

    /// Gives up the fd without closing it (deregistered first).
    [[nodiscard]] int release() noexcept {
        deregister();
        driver_.reset();
        return std::exchange(fd_, -1);
    }

    /// Deregisters and closes the fd. Returns close()'s error, if any.
    result<void> close() noexcept {
        if (fd_ < 0)
            return {};
        deregister();
        const int fd = std::exchange(fd_, -1);
        driver_.reset();
        if (::close(fd) < 0 && errno != EINTR)
            return last_system_error();
        return {};
    }

private:
    io_source(std::shared_ptr<io_driver> d, int fd) noexcept : driver_(std::move(d)), fd_(fd) {}

    void deregister() noexcept {
        if (scheduled_io* io = registered_.exchange(nullptr, memory_order_acq_rel))
            static_cast<epoll_driver&>(*driver_).deregister(io);
    }

    static std::error_code set_blocking(int fd, bool blocking) noexcept {
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0)
            return last_system_error();
        const int wanted = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
        if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0)
            return last_system_error();
        return {};
    }

    std::shared_ptr<io_driver> driver_;
    int fd_ = -1;
    atomic<scheduled_io*> registered_{nullptr};
    atomic<bool> send_buffer_full_{false}; ///< io_uring: the last send was short
    spin_lock registration_lock_;
};

} // namespace eddy::detail
