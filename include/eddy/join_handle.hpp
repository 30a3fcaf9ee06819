#pragma once
//! `eddy::join_handle<T>`: owned permission to await a spawned task's output, or to abort it.
//!
//! - `co_await handle` suspends until the task finishes and returns its value; an exception the
//!   task threw is rethrown; a task that was aborted or shut down throws `eddy::join_error` with
//!   `errc::cancelled`. The awaiting task is resumed on its own runtime, woken by the thread that
//!   finished the task. Cancel-safe: if the awaiting coroutine is destroyed while suspended here,
//!   it withdraws its waker and the task keeps running.
//! - Dropping the handle detaches the task: it runs on, and an exception that escapes it goes to
//!   the runtime's unhandled-exception hook. So does the exception of a task that finished before
//!   its handle was dropped without being joined: no exception is lost silently.
//! - `abort()` requests cancellation from any thread. The task's frame is destroyed at its
//!   current suspension point the next time the runtime gets to it; a finished task is left as is.

#include <eddy/config.hpp>

#include <eddy/result.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/raw_task.hpp>

#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace eddy {

template <class T>
class task;

/// The reason a joined task produced no value (`errc::cancelled`: aborted or shut down).
class join_error : public std::system_error {
public:
    explicit join_error(std::error_code ec)
        : std::system_error(ec, "eddy: joined task produced no value") {}

    [[nodiscard]] bool is_cancelled() const noexcept { return code() == errc::cancelled; }
};

/// Identifies a spawned task for the lifetime of the process (never reused, never zero).
struct task_id {
    std::uint64_t value = 0;
    friend bool operator==(task_id, task_id) = default;
    friend auto operator<=>(task_id, task_id) = default;
};

namespace detail {
template <class T>
struct join_access;
} // namespace detail

template <class T>
class [[nodiscard]] join_handle {
public:
    join_handle() noexcept = default;
    join_handle(join_handle&& other) noexcept
        : task_(std::exchange(other.task_, nullptr)), taken_(other.taken_) {}
    join_handle& operator=(join_handle&& other) noexcept {
        if (this != &other) {
            detach();
            task_ = std::exchange(other.task_, nullptr);
            taken_ = other.taken_;
        }
        return *this;
    }
    join_handle(const join_handle&) = delete;
    join_handle& operator=(const join_handle&) = delete;
    ~join_handle() { detach(); }

    /// Requests cancellation. Safe from any thread, at any time, any number of times.
    void abort() const noexcept {
        if (task_ != nullptr)
            detail::abort_task(task_);
    }

    /// True once the task completed, was cancelled, or panicked; the join will not suspend.
    [[nodiscard]] bool is_finished() const noexcept {
        return task_ != nullptr && (task_->state.load() & detail::task_state::complete) != 0;
    }

    [[nodiscard]] task_id id() const noexcept {
        return task_id{task_ != nullptr ? task_->id() : 0};
    }

    [[nodiscard]] bool valid() const noexcept { return task_ != nullptr; }

    /// Detaches: the task runs on; its output is dropped when it finishes.
    void detach() noexcept {
        if (auto* t = std::exchange(task_, nullptr)) {
            const std::uint64_t prev = t->state.unset_join_interest();
            if ((prev & detail::task_state::join_waker) && !(prev & detail::task_state::complete)) {
                // SAFETY: JOIN_WAKER was set and COMPLETE was not, so the completing thread will
                // never read the field; the stored waker's reference is ours.
                waker(std::exchange(t->join_waker, nullptr)).reset();
            }
            if ((prev & detail::task_state::complete) && !taken_ && !t->frame_destroyed()) {
                // It finished while we held the handle, and nobody looked at the outcome: an
                // exception would be lost silently, so it goes to the runtime's hook.
                // ORDERING: COMPLETE was read with acquire in unset_join_interest.
                const auto* vt = static_cast<const detail::task_vtable*>(t->vtable);
                if (std::exception_ptr e = vt->exception(t)) {
                    t->sched->unhandled_exception(t, std::move(e));
                }
            }
            detail::release_task(t);
        }
    }

    class awaiter {
    public:
        explicit awaiter(join_handle& h) noexcept : handle_(h) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (registered_ && handle_.task_->state.unset_join_waker()) {
                // The awaiting task was cancelled before completion: take our waker back.
                waker(std::exchange(handle_.task_->join_waker, nullptr)).reset();
            }
        }

        bool await_ready() const {
            handle_.check_joinable();
            // A finished task is a ready result: it spends cooperative budget (coop.hpp).
            return handle_.is_finished() && detail::coop::try_consume();
        }

        bool await_suspend(std::coroutine_handle<> h) {
            detail::task_header* t = handle_.task_;
            if (handle_.is_finished()) {
                // Ready, but the budget is spent: yield first.
                detail::coop::yield_current(h);
                return true;
            }
            // SAFETY: JOIN_WAKER is clear (one awaiter at a time), so the field is ours until
            // set_join_waker publishes it.
            t->join_waker = current_waker(h).release();
            if (!t->state.set_join_waker()) {
                // Finished in the meantime: resume at once.
                waker(std::exchange(t->join_waker, nullptr)).reset();
                return false;
            }
            registered_ = true;
            return true;
        }

        T await_resume() {
            if (!handle_.is_finished()) {
                // Only our join waker resumes this await, once the task is complete. Anything else
                // is a waker woken against the contract in waker.hpp: stop loudly rather than read
                // an output that does not exist yet.
                std::fputs(
                    "eddy: a task was resumed inside `co_await join_handle` before the joined "
                    "task finished: some waker was woken after its awaitable had resumed "
                    "(see eddy/waker.hpp)\n",
                    stderr);
                std::abort();
            }
            registered_ = false;
            return handle_.take_output();
        }

    private:
        join_handle& handle_;
        bool registered_ = false;
    };

    /// Suspends until the task finishes; see the header comment.
    awaiter operator co_await() & { return awaiter(*this); }
    awaiter operator co_await() && { return awaiter(*this); }

private:
    template <class>
    friend struct detail::join_access;

    explicit join_handle(detail::task_header* t) noexcept : task_(t) {}

    void check_joinable() const {
        if (task_ == nullptr)
            throw std::logic_error("eddy::join_handle: empty handle");
        if (taken_)
            throw join_error(make_error_code(errc::already_taken));
    }

    T take_output() {
        taken_ = true;
        // ORDERING: is_finished() loaded COMPLETE with acquire, pairing with the release in
        // transition_to_complete, so the frame's output (or frame_destroyed) is visible.
        if (task_->frame_destroyed())
            throw join_error(make_error_code(errc::cancelled));
        using promise_t = typename task<T>::promise_type;
        return std::coroutine_handle<promise_t>::from_address(task_->frame()).promise().take();
    }

    detail::task_header* task_ = nullptr;
    bool taken_ = false;
};

} // namespace eddy
