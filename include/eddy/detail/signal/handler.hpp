#pragma once
//! The process-global half of `eddy::signal`: the state a signal handler touches, the handler,
//! and its installation.
//!
//! Per signal number there is a delivery counter. eddy's handler (installed once per signal, the
//! first time someone listens for it, and never removed: the process keeps it, as in Tokio) does
//! three async-signal-safe things and nothing else: it bumps the counter, writes one byte to a
//! global self-pipe (non-blocking, close-on-exec; a full pipe already holds a pending wake, so a
//! failed write loses nothing), and calls the handler that was installed before it, if that was a
//! function. It preserves `errno`. Turning the bytes into wakes is the I/O drivers' job (see
//! reader.hpp): a runtime's reader task waits until the pipe is readable, drains it, and wakes
//! every waiter whose last seen count is behind its signal's counter.
//!
//! Threads: the handler runs on whichever thread the kernel picks; `install` may be called from
//! any thread (serialized by a mutex). The handler's state is constant-initialized and never
//! destroyed, so a signal arriving during static initialization or destruction finds it intact.
//! It uses `std::atomic` directly rather than `detail::atomic`: a handler needs real lock-free
//! atomics, never a checker's instrumented stand-in.
//!
//! Invariants: `deliveries` only grows. `previous` is written once, before `chains` is set
//! (release) and before the handler is installed; the handler reads it only after seeing
//! `chains` (acquire). The pipe's ends are created before the first handler is installed and are
//! never closed. The read end stays non-blocking for the life of the process: O_NONBLOCK belongs
//! to the open file description, which duplicates share, so no reader may change it.

#include <eddy/config.hpp>

#include <eddy/result.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace eddy::detail::signal {

/// One past the highest signal number (NSIG: 65 on Linux, signals 1..64).
inline constexpr int max_signal = NSIG;

/// What the handler knows about one signal number.
struct handler_slot {
    std::atomic<std::uint64_t> deliveries{0}; ///< bumped by the handler, once per delivery
    std::atomic<bool> installed{false};       ///< eddy's handler is installed for this signal
    std::atomic<bool> chains{false};          ///< `previous` is a function to call
    struct sigaction previous {};             ///< the disposition before eddy's; see `chains`
};

struct handler_state {
    handler_slot slots[max_signal];
    std::atomic<int> read_fd{-1};  ///< the self-pipe's read end (non-blocking)
    std::atomic<int> write_fd{-1}; ///< the self-pipe's write end (non-blocking)
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "a signal handler may only use lock-free atomics");

inline constinit handler_state handler_globals{};

/// The handler eddy installs (see the module comment). Async-signal-safe.
inline void on_signal(int signo, siginfo_t* info, void* context) noexcept {
    const int saved_errno = errno;
    if (signo > 0 && signo < max_signal) {
        handler_slot& slot = handler_globals.slots[signo];
        // ORDERING: seq_cst, and before the write: a reader that consumes the byte then loads
        // the counter (in notify) sees this increment (the pipe's read follows its write).
        slot.deliveries.fetch_add(1, std::memory_order_seq_cst);
        // ORDERING: acquire pairs with the release in ensure_pipe (the fd number is published).
        const int fd = handler_globals.write_fd.load(std::memory_order_acquire);
        if (fd >= 0) {
            const char byte = 1;
            // EAGAIN (the pipe is full) is fine: unread bytes already promise a wake.
            [[maybe_unused]] const ssize_t n = ::write(fd, &byte, 1);
        }
        // ORDERING: acquire pairs with the release in install: `previous` is complete.
        if (slot.chains.load(std::memory_order_acquire)) {
            const struct sigaction& prev = slot.previous;
            if ((prev.sa_flags & SA_SIGINFO) != 0) {
                prev.sa_sigaction(signo, info, context);
            } else {
                prev.sa_handler(signo);
            }
        }
    }
    errno = saved_errno;
}

/// Deliveries of `signo` so far (valid numbers only).
[[nodiscard]] inline std::uint64_t deliveries(int signo) noexcept {
    // ORDERING: acquire pairs with the handler's increment.
    return handler_globals.slots[signo].deliveries.load(std::memory_order_acquire);
}

/// Whether eddy's handler was installed for `signo` (valid numbers only).
[[nodiscard]] inline bool installed(int signo) noexcept {
    // ORDERING: acquire pairs with the release at the end of install.
    return handler_globals.slots[signo].installed.load(std::memory_order_acquire);
}

/// The self-pipe's read end, or -1 before the first installation.
[[nodiscard]] inline int pipe_read_fd() noexcept {
    return handler_globals.read_fd.load(std::memory_order_acquire);
}

/// `std::errc::invalid_argument` for a number eddy will not handle: out of range, a signal that
/// cannot be caught (SIGKILL, SIGSTOP), one that reports a fault of the thread it interrupts
/// (SIGSEGV, SIGBUS, SIGILL, SIGFPE: returning from a handler for a real fault repeats it), or
/// one the C library reserves (between the classic signals and SIGRTMIN).
[[nodiscard]] inline std::error_code check_signal_number(int signo) noexcept {
    const std::error_code invalid = std::make_error_code(std::errc::invalid_argument);
    if (signo <= 0 || signo >= max_signal)
        return invalid;
    switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
        return invalid;
    default:
        break;
    }
    if (signo > SIGSYS && signo < SIGRTMIN)
        return invalid;
    return {};
}

inline std::mutex& install_lock() noexcept {
    static std::mutex lock;
    return lock;
}

/// Creates the self-pipe if it does not exist yet. Caller holds install_lock().
inline std::error_code ensure_pipe_locked() noexcept {
    if (handler_globals.write_fd.load(std::memory_order_relaxed) >= 0)
        return {};
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return last_system_error();
    // ORDERING: release pairs with the acquire loads in on_signal and pipe_read_fd.
    handler_globals.read_fd.store(fds[0], std::memory_order_release);
    handler_globals.write_fd.store(fds[1], std::memory_order_release);
    return {};
}

/// Installs eddy's handler for `signo` unless it already is, saving the previous disposition to
/// chain to (only a function: SIG_DFL and SIG_IGN are replaced, not chained). Errors:
/// `std::errc::invalid_argument` (see check_signal_number), or the system error of pipe2 or
/// sigaction.
[[nodiscard]] inline std::error_code install(int signo) noexcept {
    if (std::error_code ec = check_signal_number(signo))
        return ec;
    handler_slot& slot = handler_globals.slots[signo];
    if (installed(signo))
        return {};
    std::lock_guard guard(install_lock());
    if (slot.installed.load(std::memory_order_relaxed))
        return {};
    if (std::error_code ec = ensure_pipe_locked())
        return ec;
    struct sigaction prev {};
    if (::sigaction(signo, nullptr, &prev) < 0)
        return last_system_error();
    const bool is_function = (prev.sa_flags & SA_SIGINFO) != 0
                                 ? prev.sa_sigaction != nullptr
                                 : (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN);
    if (is_function) {
        slot.previous = prev;
        // ORDERING: release pairs with the handler's acquire load: `previous` is written.
        slot.chains.store(true, std::memory_order_release);
    }
    struct sigaction action {};
    action.sa_sigaction = &on_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (::sigaction(signo, &action, nullptr) < 0) {
        const std::error_code ec = last_system_error();
        slot.chains.store(false, std::memory_order_relaxed);
        return ec;
    }
    // ORDERING: release pairs with the acquire in installed().
    slot.installed.store(true, std::memory_order_release);
    return {};
}

} // namespace eddy::detail::signal
