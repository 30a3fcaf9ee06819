#pragma once
//! `eddy::signal`: wait for Unix signals in tasks (Tokio's `tokio::signal`).
//!
//! ```cpp
//! co_await eddy::signal::ctrl_c();                          // the next SIGINT
//! auto hup = eddy::signal::listen(SIGHUP);                  // result<listener>
//! if (!hup) return hup.error();
//! while (co_await hup->recv()) reload_config();             // once per delivery (batch)
//! ```
//!
//! - `listen(signo)` returns a `listener`, which counts the deliveries of `signo` from the moment
//!   it was created. `co_await l.recv()` completes as soon as at least one delivery happened
//!   since the listener was created or its previous `recv` completed, and marks them all seen:
//!   deliveries coalesce, so several signals before a `recv` may complete it only once (the
//!   kernel coalesces pending signals too). It never completes for a delivery that happened
//!   before the listener existed.
//! - Broadcast: any number of listeners may wait for the same signal, in tasks on any workers of
//!   any runtimes; every delivery wakes each of them. Each listener remembers what it has seen, so
//!   a copy of a listener starts from the original's position.
//! - `recv(signo)` and `ctrl_c()` (= `recv(SIGINT)`) listen at the call, not at the first
//!   `co_await`, so a signal that arrives in between is not missed; then they wait for one
//!   delivery.
//! - Errors: `std::errc::invalid_argument` for a number that cannot be handled (out of range,
//!   SIGKILL, SIGSTOP, the fault signals SIGSEGV, SIGBUS, SIGILL, SIGFPE, and the numbers the C
//!   library reserves below SIGRTMIN); the system error if the handler or its pipe cannot be set
//!   up. Never a crash.
//!
//! The handler is process-wide and permanent, as in Tokio: the first `listen` for a signal
//! installs it (SA_RESTART) and it stays installed for the life of the process, even when no
//! listener is left. So the signal's default action no longer happens: once something listened
//! for SIGINT, Ctrl-C no longer terminates the program; listen for it and exit when it arrives.
//! A handler function installed before eddy's is still called (chained); SIG_IGN and SIG_DFL
//! are replaced. Replacing eddy's handler later (with `sigaction`) stops eddy from seeing it.
//!
//! How deliveries reach tasks: eddy's handler only bumps a per-signal counter and writes a byte
//! to a self-pipe (both async-signal-safe). Each runtime in which a `recv` waits has one internal
//! reader task that waits for the pipe through the runtime's I/O driver (epoll or io_uring) and
//! wakes every waiting listener that is behind. The reader is cancelled with its runtime like any
//! task: it neither keeps a runtime running nor outlives it. See detail/signal/. A child forked
//! without exec shares the pipe (and the handlers) with its parent: listen in one of them only.
//!
//! Threads: `listen` may be called from any thread, inside a runtime or not; `recv` must be
//! awaited inside a task of an eddy runtime (otherwise `std::logic_error`). A listener is used by
//! one task at a time, must outlive its `recv` operations and must not be moved while one is
//! pending. To wait from several tasks, give each its own listener (a copy, or another `listen`).

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/signal/handler.hpp>
#include <eddy/detail/signal/reader.hpp>
#include <eddy/detail/signal/waiters.hpp>
#include <eddy/detail/sync/waiting.hpp>

#include <coroutine>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <signal.h>

namespace eddy::signal {

class listener;

[[nodiscard]] inline result<listener> listen(int signo);

/// The deliveries of one signal, as seen by one receiver. Copyable: a copy has seen what the
/// original has seen. See the header comment.
class listener {
public:
    /// An empty listener (`valid()` is false); `recv` on it throws `std::logic_error`.
    listener() noexcept = default;

    /// The signal this listener receives (0 when empty).
    [[nodiscard]] int signal_number() const noexcept { return signo_; }
    [[nodiscard]] bool valid() const noexcept { return signo_ != 0; }

    /// `co_await l.recv()`: completes with success once the signal was delivered since this
    /// listener was created or last completed a `recv`, and marks every delivery so far seen.
    /// Suspends until then; resumes on a worker of the awaiting task's runtime, woken by the
    /// thread that read the signal's pipe byte (any runtime's reader). A ready delivery spends
    /// cooperative budget instead of suspending. Fails only if the runtime's reader cannot be
    /// set up (the system error of dup). Cancel-safe: destroying the operation (an aborted task,
    /// a lost `select`, an expired `timeout`) withdraws it, and since deliveries are marked seen
    /// only when a `recv` completes, none is lost: the next `recv` on the same listener
    /// completes at once for a delivery that the cancelled one was woken for.
    class [[nodiscard]] recv_operation {
    public:
        explicit recv_operation(listener* l) noexcept : l_(l) {}
        recv_operation(recv_operation&& other) noexcept : l_(other.l_), error_(other.error_) {
            EDDY_ASSERT(!other.registered_);
        }
        recv_operation& operator=(recv_operation&&) = delete;
        ~recv_operation() {
            if (registered_) {
                auto& list = eddy::detail::signal::waiter_lists[l_->signo_];
                eddy::detail::withdraw(list.lock, list.waiters, node_);
            }
        }

        [[nodiscard]] bool await_ready() const noexcept {
            return l_->pending() && eddy::detail::coop::try_consume();
        }

        bool await_suspend(std::coroutine_handle<> h) {
            // The runtime this task runs on must read the pipe while we wait.
            if (std::error_code ec = eddy::detail::signal::ensure_reader()) {
                error_ = ec;
                return false;
            }
            auto& list = eddy::detail::signal::waiter_lists[l_->signo_];
            {
                std::lock_guard guard(list.lock);
                // Checked under the lock notify takes: a delivery after this check is followed
                // by a pipe byte, whose reader's notify finds us linked.
                if (!l_->pending()) {
                    node_.seen = l_->seen_;
                    node_.w = current_waker(h);
                    list.waiters.push_back(&node_);
                    registered_ = true;
                    return true;
                }
            }
            return eddy::detail::complete_or_yield(h);
        }

        result<void> await_resume() noexcept {
            registered_ = false; // woken: notify unlinked us
            if (error_)
                return error_;
            l_->seen_ = eddy::detail::signal::deliveries(l_->signo_);
            return {};
        }

    private:
        listener* l_;
        eddy::detail::signal::waiter node_;
        std::error_code error_;
        bool registered_ = false;
    };

    /// See `recv_operation`.
    recv_operation recv() {
        if (signo_ == 0)
            throw std::logic_error("eddy::signal::listener: recv on an empty listener");
        return recv_operation(this);
    }

private:
    friend result<listener> listen(int signo);

    listener(int signo, std::uint64_t seen) noexcept : signo_(signo), seen_(seen) {}

    [[nodiscard]] bool pending() const noexcept {
        return eddy::detail::signal::deliveries(signo_) != seen_;
    }

    int signo_ = 0;
    std::uint64_t seen_ = 0; ///< the delivery count when created or last received
};

/// Starts listening for `signo` (installing eddy's handler the first time; see the header
/// comment). Any thread. Errors: `std::errc::invalid_argument` for a signal that cannot be
/// handled, or the system error of `pipe2`/`sigaction`.
inline result<listener> listen(int signo) {
    if (std::error_code ec = eddy::detail::signal::install(signo))
        return ec;
    return listener(signo, eddy::detail::signal::deliveries(signo));
}

} // namespace eddy::signal

namespace eddy::detail::signal {

inline task<result<void>> recv_once(result<eddy::signal::listener> l) {
    if (!l)
        co_return l.error();
    co_return co_await l->recv();
}

} // namespace eddy::detail::signal

namespace eddy::signal {

/// Waits for the next delivery of `signo` after this call (the listener is created now, not when
/// the task is first awaited). Errors as `listen`. Cancel-safe (nothing to lose: the listener
/// lives in the task).
[[nodiscard]] inline task<result<void>> recv(int signo) {
    return eddy::detail::signal::recv_once(listen(signo));
}

/// Waits for the next SIGINT (Ctrl-C) after this call; the first call installs eddy's handler,
/// after which SIGINT no longer terminates the process (see the header comment).
[[nodiscard]] inline task<result<void>> ctrl_c() {
    return recv(SIGINT);
}

} // namespace eddy::signal
