#pragma once
//! The I/O operations sockets are built from, each on both backends:
//!  - io_uring: the operation is submitted (`uring_op`) and the task resumes with its result.
//!  - epoll: the non-blocking system call is tried first; on EAGAIN the task waits for readiness
//!    in that direction and tries again.
//! The single transfers (recv, send, accept, ...) are `io_operation` awaiters rather than tasks:
//! none costs a coroutine frame of its own, whether it completes at once or waits.
//! Results are counts or `std::error_code`s in the system category (ECONNRESET, EPIPE, ...); a
//! 0-byte read is end of stream. Sends use MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE.
//!
//! Cancellation: every operation is cancel-safe in the sense of invariant 2. Destroying it while
//! it waits leaves no registration behind; on io_uring the in-flight operation is cancelled and
//! the destruction completes only once the kernel is done with the buffers. Whether data moved:
//! a cancelled epoll operation did not transfer anything; a cancelled io_uring operation may have
//! completed in the kernel just before the cancel (a receive's bytes are then in the buffer but
//! not reported), as with any completion-based API.
//!
//! Ready paths spend the cooperative budget, so a loop over an always-ready socket yields.

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>
#include <eddy/yield_now.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/io/epoll_driver.hpp>
#include <eddy/detail/io/source.hpp>
#include <eddy/detail/io/uring_driver.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <system_error>
#include <utility>

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace eddy::detail {

/// What to do with the result of an operation that completed but was never resumed (its task
/// was cancelled in between): nothing, for most operations.
struct keep_result {
    void operator()(std::int32_t /*res*/) const noexcept {}
};

/// Closes the fd an accept produced for a task that is gone.
struct close_result_fd {
    void operator()(std::int32_t res) const noexcept {
        if (res >= 0)
            ::close(res);
    }
};

/// Awaits one io_uring operation prepared by `Prep` (called with the SQE under the driver's
/// submission lock); resumes with the CQE's result. See the module comment for cancellation;
/// `Discard` releases a result nobody will take (the fd of an accept cancelled too late).
template <class Prep, class Discard = keep_result>
class uring_op {
public:
    uring_op(uring_driver& d, Prep prep) noexcept : driver_(d), prep_(std::move(prep)) {}
    uring_op(const uring_op&) = delete;
    uring_op& operator=(const uring_op&) = delete;
    ~uring_op() {
        if (completion_.state.load(memory_order_acquire) == uring_completion::pending)
            driver_.cancel(completion_);
        // ORDERING: acquire, as above: res is published with DONE.
        if (!resumed_ && completion_.state.load(memory_order_acquire) == uring_completion::done)
            Discard{}(completion_.res);
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    /// Sets IORING_RECVSEND_POLL_FIRST on the send or receive before it is submitted.
    void poll_first() noexcept { poll_first_ = true; }

    void await_suspend(std::coroutine_handle<> h) {
        completion_.waker = current_waker(h).release();
        driver_.submit(completion_, [this](io_uring_sqe* sqe) {
            prep_(sqe);
            if (poll_first_)
                sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
        });
    }

    [[nodiscard]] std::int32_t await_resume() noexcept {
        resumed_ = true;
        return completion_.res;
    }

private:
    uring_driver& driver_;
    Prep prep_;
    uring_completion completion_;
    bool resumed_ = false;
    bool poll_first_ = false;
};

inline std::error_code system_error_code(long negative_errno) noexcept {
    return {static_cast<int>(-negative_errno), std::system_category()};
}

/// A system call's result as a count or -errno.
inline long count_or_errno(long r) noexcept {
    return r >= 0 ? r : -errno;
}

/// Where an epoll operation that could not complete in `await_ready` goes on from.
enum class io_phase : std::uint8_t {
    yield,        ///< out of cooperative budget: yield, then try
    retry,        ///< try the call at once (after a yield or a wake)
    wait,         ///< registered and known not ready: wait for the next event
    after_eagain, ///< the call returned EAGAIN (`word` is the snapshot taken before it)
};

/// One try of an epoll operation (see `io_operation`) on `src` (registered or not yet): the count
/// or -errno when the call completed or failed for good; -EAGAIN when it must wait, with `phase`
/// saying how (`wait`: known not ready, no call made; `after_eagain`: the call returned EAGAIN,
/// counted in the driver's metrics; `word` is the snapshot taken before it). Inlined: it is the
/// fast path of every socket operation.
template <class Attempt>
EDDY_ALWAYS_INLINE long try_once(const io_source& src, std::uint32_t interest,
                                 const Attempt& attempt, std::size_t drained_below, io_phase& phase,
                                 std::uint32_t& word) {
    scheduled_io* const io = src.registration();
    for (;;) {
        word = io != nullptr ? io->snapshot() : 0;
        if (io != nullptr && (scheduled_io::bits(word) & interest) == 0) {
            // Known not ready: the last call drained the socket or returned EAGAIN, and no
            // event came since (or another waiter took it). Wait for one instead of spending a
            // system call on EAGAIN.
            phase = io_phase::wait;
            return -EAGAIN;
        }
        const long r = attempt();
        if (r >= 0) {
            (void)coop::try_consume();
            if (io != nullptr && r > 0 && static_cast<std::size_t>(r) < drained_below)
                io->clear_ready(word, interest);
            return r;
        }
        if (r == -EINTR)
            continue;
        if (r != -EAGAIN && r != -EWOULDBLOCK)
            return r;
        src.driver().count_would_block();
        phase = io_phase::after_eagain;
        return -EAGAIN;
    }
}

/// One operation on `src` (see the module comment), as an awaiter that needs no coroutine frame
/// of its own: `attempt()` is the non-blocking call for epoll (a count or -errno), `prep(sqe)`
/// prepares the io_uring operation, `interest` is the readiness direction the call needs;
/// `Discard` releases an io_uring result nobody will take.
///
/// - epoll: `await_ready` tries the call. Only an operation that has to wait (EAGAIN, a source
///   known not to be ready, or no budget left) suspends: it links a waiter into the fd's
///   registration and puts a `resume_gate` in front of the awaiting coroutine. When the waiter
///   is woken, the gate tries the call again on the polling thread before anything resumes; the
///   coroutine resumes once the call completes, and a call that still finds nothing (another
///   task took the data) waits again without resuming it.
/// - io_uring: `await_suspend` submits the operation and the awaiting coroutine resumes with the
///   completion's result.
///
/// `drained_below`: on a stream socket, a transfer shorter than this (but not 0) emptied the
/// receive buffer or filled the send buffer, so the readiness bit is cleared at once (as of
/// the snapshot taken before the call: an event that came meanwhile keeps it). A registered
/// source whose bit is clear is not tried: the operation waits for the next event (the fd is
/// edge-triggered, so data that arrives later always brings one). That saves the next call's
/// EAGAIN, one system call per message in a request-response exchange. 0 (datagrams, peeks)
/// keeps the bit until a call returns EAGAIN. On io_uring a short send marks the next send
/// IORING_RECVSEND_POLL_FIRST: the kernel waits for room before it tries, instead of trying,
/// failing and then arming its poll. (Receives are not marked: in a request-response exchange
/// the next request is often waiting by the time the receive is submitted, and a poll armed on
/// a ready socket completes through task work, which costs more than the failed try it saves.)
///
/// Movable until it is first awaited; the buffers the calls name must outlive it.
template <class Attempt, class Prep, class Discard = keep_result>
class [[nodiscard]] io_operation {
public:
    io_operation(io_source& src, std::uint32_t interest, Attempt attempt, Prep prep,
                 std::size_t drained_below = 0) noexcept
        : src_(&src),
          attempt_(std::move(attempt)),
          prep_(std::move(prep)),
          drained_below_(drained_below),
          interest_(interest) {
        waiter_.interest = interest;
    }
    io_operation(io_operation&& other) noexcept
        : src_(other.src_),
          attempt_(std::move(other.attempt_)),
          prep_(std::move(other.prep_)),
          drained_below_(other.drained_below_),
          interest_(other.interest_),
          phase_(other.phase_),
          must_wait_(other.must_wait_),
          word_(other.word_),
          result_(other.result_) {
        EDDY_ASSERT(!other.uring_ && other.waiting_on_ == nullptr);
        waiter_.interest = interest_;
    }
    io_operation& operator=(io_operation&&) = delete;
    ~io_operation() {
        // A waiter still linked belongs to a cancelled wait; uring_ cancels in its own destructor.
        if (waiting_on_ != nullptr)
            waiting_on_->remove_waiter(waiter_);
    }

    bool await_ready() {
        if (must_wait_)
            return false; // asked again (an operation moved on after a first look): no new try
        if (!src_->is_open()) {
            result_ = std::error_code(EBADF, std::system_category());
            return true;
        }
        if (src_->driver().is_shut_down()) {
            result_ = errc::shutdown;
            return true;
        }
        if (src_->completion_based())
            return false;
        if (!coop::has_remaining()) {
            phase_ = io_phase::yield;
            must_wait_ = true;
            return false;
        }
        if (!attempt_and_keep())
            return true;
        must_wait_ = true;
        return false;
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
        if (src_->completion_based()) {
            uring_.emplace(src_->uring(), std::move(prep_));
            if (sends_on_stream() && src_->send_buffer_full() && src_->uring().has_poll_first())
                uring_->poll_first();
            uring_->await_suspend(h);
            return std::noop_coroutine();
        }
        resumable* owner = context().task;
        if (owner == nullptr)
            (void)current_waker(h); // throws the explanatory logic_error
        // Returning a handle keeps this awaiter out of the in-place wrappers that poll it through
        // a proxy (timeout), so the owner is a task or a branch: both run gates.
        EDDY_ASSERT(owner->vtable->runs_gates);
        continuation_ = h;
        if (advance())
            return h; // completed (or failed) without waiting after all
        owner->resume_point = resume_target(&gate_);
        return std::noop_coroutine();
    }

    result<std::size_t> await_resume() {
        if (uring_) {
            const std::int32_t r = uring_->await_resume();
            if (sends_on_stream())
                src_->note_send(r > 0 && static_cast<std::size_t>(r) < drained_below_);
            if (r < 0)
                return system_error_code(r);
            return static_cast<std::size_t>(r);
        }
        return result_;
    }

private:
    /// The gate in front of the awaiting coroutine while the operation waits.
    struct gate : resume_gate {
        io_operation* op;
    };

    /// A send on a stream socket (see `drained_below`).
    [[nodiscard]] bool sends_on_stream() const noexcept {
        return drained_below_ > 0 && (interest_ & ready::writable) != 0;
    }

    /// Tries the call once: false when it completed or failed for good (in `result_`), true when
    /// it must wait (`phase_` says how).
    bool attempt_and_keep() {
        const long r = try_once(*src_, interest_, attempt_, drained_below_, phase_, word_);
        if (r == -EAGAIN)
            return true;
        if (r >= 0)
            result_ = static_cast<std::size_t>(r);
        else
            result_ = system_error_code(r);
        return false;
    }

    /// Goes on from `phase_` until the call completes (true: `result_` holds it) or the
    /// operation waits (false: a waiter is linked, or the task yielded; `phase_` is `retry`).
    /// Runs on the thread polling the owner, which is the context's task.
    bool advance() {
        for (;;) {
            switch (phase_) {
            case io_phase::yield:
                phase_ = io_phase::retry;
                coop::yield_current(continuation_);
                return false;
            case io_phase::retry:
                if (!attempt_and_keep())
                    return true;
                break; // phase_ is wait or after_eagain now
            case io_phase::after_eagain:
                if (scheduled_io* io = src_->registration()) {
                    io->clear_ready(word_, interest_);
                } else {
                    // First wait: registering reports the readiness the fd has now.
                    std::error_code ec;
                    if (src_->register_now(ec) == nullptr) {
                        result_ = ec;
                        return true;
                    }
                }
                phase_ = io_phase::wait;
                break;
            case io_phase::wait:
                phase_ = io_phase::retry;
                waiting_on_ = src_->registration();
                if (waiting_on_->add_waiter(waiter_, continuation_))
                    return false;
                break; // ready already: try at once
            }
        }
    }

    static bool check(resume_gate* g, resumable& owner) noexcept {
        io_operation& op = *static_cast<gate*>(g)->op;
        bool done = true;
        try {
            done = op.advance();
        } catch (const std::bad_alloc&) {
            // Only a first registration allocates (after a yield): report it as the call's error.
            op.result_ = std::make_error_code(std::errc::not_enough_memory);
        }
        if (!done) {
            owner.resume_point = resume_target(g); // add_waiter/yield recorded the coroutine
            return false;
        }
        owner.resume_point = op.continuation_;
        return true;
    }

    io_source* src_;
    Attempt attempt_;
    Prep prep_;
    std::size_t drained_below_;
    std::uint32_t interest_;
    io_phase phase_ = io_phase::wait;
    bool must_wait_ = false; ///< epoll: await_ready found it must wait, `phase_` says how
    std::uint32_t word_ = 0;
    result<std::size_t> result_{std::size_t{0}};
    io_waiter waiter_;                     ///< epoll: linked into the registration while waiting
    scheduled_io* waiting_on_ = nullptr;   ///< epoll: where `waiter_` was last linked
    gate gate_{{&check}, this};            ///< epoll: in front of the awaiting coroutine meanwhile
    std::coroutine_handle<> continuation_; ///< epoll: the awaiting coroutine
    std::optional<uring_op<Prep, Discard>> uring_; ///< io_uring: the operation in flight
};

/// An `io_operation` on `src`.
template <class Attempt, class Prep, class Discard = keep_result>
io_operation<Attempt, Prep, Discard> perform(io_source& src, std::uint32_t interest,
                                             Attempt attempt, Prep prep, Discard /*discard*/ = {},
                                             std::size_t drained_below = 0) noexcept {
    return io_operation<Attempt, Prep, Discard>(src, interest, std::move(attempt), std::move(prep),
                                                drained_below);
}

/// What kind of socket a transfer is on (see `perform`'s `drained_below`).
enum class socket_kind { datagram, stream };

inline auto recv(io_source& s, void* buf, std::size_t len, int flags = 0,
                 socket_kind kind = socket_kind::datagram) {
    const int fd = s.fd();
    const bool drains = kind == socket_kind::stream && (flags & MSG_PEEK) == 0;
    return perform(
        s, ready::read_interest,
        [=] { return count_or_errno(::recv(fd, buf, len, flags | MSG_DONTWAIT)); },
        [=](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, buf, len, flags); }, keep_result{},
        drains ? len : 0);
}

inline auto send(io_source& s, const void* buf, std::size_t len, int flags = 0,
                 socket_kind kind = socket_kind::datagram) {
    const int fd = s.fd();
    return perform(
        s, ready::write_interest,
        [=] { return count_or_errno(::send(fd, buf, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT)); },
        [=](io_uring_sqe* sqe) { io_uring_prep_send(sqe, fd, buf, len, flags | MSG_NOSIGNAL); },
        keep_result{}, kind == socket_kind::stream ? len : 0);
}

/// `msg` must stay valid until the operation completes (it lives in the caller's frame).
inline auto recvmsg(io_source& s, msghdr* msg, int flags = 0) {
    const int fd = s.fd();
    return perform(
        s, ready::read_interest,
        [=] { return count_or_errno(::recvmsg(fd, msg, flags | MSG_DONTWAIT)); },
        [=](io_uring_sqe* sqe) {
            io_uring_prep_recvmsg(sqe, fd, msg, static_cast<unsigned>(flags));
        });
}

inline auto sendmsg(io_source& s, const msghdr* msg, int flags = 0) {
    const int fd = s.fd();
    return perform(
        s, ready::write_interest,
        [=] { return count_or_errno(::sendmsg(fd, msg, flags | MSG_NOSIGNAL | MSG_DONTWAIT)); },
        [=](io_uring_sqe* sqe) {
            io_uring_prep_sendmsg(sqe, fd, msg, static_cast<unsigned>(flags | MSG_NOSIGNAL));
        });
}

/// read(2) on a pipe, eventfd or socket (not regular files: see fs).
inline auto read(io_source& s, void* buf, std::size_t len) {
    const int fd = s.fd();
    return perform(
        s, ready::read_interest, [=] { return count_or_errno(::read(fd, buf, len)); },
        [=](io_uring_sqe* sqe) {
            io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), static_cast<__u64>(-1));
        });
}

inline auto write(io_source& s, const void* buf, std::size_t len) {
    const int fd = s.fd();
    return perform(
        s, ready::write_interest, [=] { return count_or_errno(::write(fd, buf, len)); },
        [=](io_uring_sqe* sqe) {
            io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), static_cast<__u64>(-1));
        });
}

/// Gathers `iov` (which must stay valid until the operation completes) into one send. A
/// sendmsg rather than a writev, for MSG_NOSIGNAL.
inline auto send_vectored(io_source& s, const iovec* iov, std::size_t count) {
    const int fd = s.fd();
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = count;
    // The lambdas' copies of `msg` live in the operation, which the awaiting frame holds until
    // it is done.
    return perform(
        s, ready::write_interest,
        [=] { return count_or_errno(::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)); },
        [=](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL); });
}

/// Accepts one connection: the new fd (in the backend's mode, close-on-exec). `addr`/`len`
/// receive the peer's address and must stay valid until the operation completes.
inline auto accept(io_source& s, sockaddr* addr, socklen_t* len) {
    const int fd = s.fd();
    return perform(
        s, ready::read_interest,
        [=] { return count_or_errno(::accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC)); },
        [=](io_uring_sqe* sqe) { io_uring_prep_accept(sqe, fd, addr, len, SOCK_CLOEXEC); },
        close_result_fd{});
}

/// Connects `s` (a fresh socket) to `addr`, which must stay valid until the operation completes.
inline task<result<void>> connect(io_source& s, const sockaddr* addr, socklen_t len) {
    if (!s.is_open())
        co_return std::error_code(EBADF, std::system_category());
    if (s.driver().is_shut_down())
        co_return errc::shutdown;
    const int fd = s.fd();
    if (s.completion_based()) {
        auto prep = [=](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, fd, addr, len); };
        uring_op<decltype(prep)> op(s.uring(), prep);
        const std::int32_t r = co_await op;
        if (r < 0)
            co_return system_error_code(r);
        co_return result<void>{};
    }
    int rc = 0;
    do {
        rc = ::connect(fd, addr, len);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        co_return result<void>{};
    if (errno != EINPROGRESS)
        co_return last_system_error();
    std::error_code ec;
    scheduled_io* io = s.register_now(ec);
    if (io == nullptr)
        co_return ec;
    for (;;) {
        const std::uint32_t word = io->snapshot();
        int err = 0;
        socklen_t err_len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
            co_return last_system_error();
        if (err != 0)
            co_return std::error_code(err, std::system_category());
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0)
            co_return result<void>{};
        if (errno != ENOTCONN)
            co_return last_system_error();
        io->clear_ready(word, ready::write_interest);
        co_await io->ready_for(ready::write_interest);
    }
}

/// Waits until `s` is ready for `interest` (`ready::read_interest` or `ready::write_interest`)
/// without transferring anything: the first half of a `try_transfer`. On epoll it waits for
/// the readiness the driver recorded (at once if it is set); on io_uring it is a one-shot
/// IORING_OP_POLL_ADD. Readiness can be stale by the time the caller acts on it (another task
/// took the data): the transfer after it may still find nothing and must wait again.
/// Cancel-safe: nothing is consumed.
inline task<result<void>> wait_ready(io_source& s, std::uint32_t interest) {
    if (!s.is_open())
        co_return std::error_code(EBADF, std::system_category());
    if (s.driver().is_shut_down())
        co_return errc::shutdown;
    if (s.completion_based()) {
        const int fd = s.fd();
        const unsigned mask = (interest & ready::readable) != 0 ? POLLIN | POLLRDHUP : POLLOUT;
        auto prep = [=](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, fd, mask); };
        uring_op<decltype(prep)> op(s.uring(), prep);
        const std::int32_t r = co_await op;
        if (r < 0)
            co_return system_error_code(r);
        co_return result<void>{};
    }
    std::error_code ec;
    scheduled_io* io = s.register_now(ec);
    if (io == nullptr)
        co_return ec;
    if ((scheduled_io::bits(io->snapshot()) & interest) != 0) {
        // Ready now: spend budget, and yield once it is gone, so a readable()/try_read loop on
        // an always-ready socket lets other tasks run (ready_for would not suspend).
        if (!coop::try_consume())
            co_await yield_now();
        co_return result<void>{};
    }
    co_await io->ready_for(interest);
    co_return result<void>{};
}

/// One non-blocking attempt of a transfer (`attempt` returns a count or -errno and must not
/// block: MSG_DONTWAIT, as io_uring's sockets are in blocking mode). Nothing to transfer is
/// `std::errc::operation_would_block`, and on epoll clears the readiness `wait_ready` waits
/// for, unless an event came during the attempt.
template <class Attempt>
result<std::size_t> try_transfer(io_source& s, std::uint32_t interest, Attempt attempt) {
    if (!s.is_open())
        return std::error_code(EBADF, std::system_category());
    scheduled_io* io = s.completion_based() ? nullptr : s.registration();
    const std::uint32_t word = io != nullptr ? io->snapshot() : 0;
    for (;;) {
        const long r = attempt();
        if (r >= 0)
            return static_cast<std::size_t>(r);
        if (r == -EINTR)
            continue;
        if ((r == -EAGAIN || r == -EWOULDBLOCK) && io != nullptr)
            io->clear_ready(word, interest);
        return system_error_code(r);
    }
}

} // namespace eddy::detail
