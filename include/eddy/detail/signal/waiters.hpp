#pragma once
//! The tasks waiting for signals: one list per signal number, process-global, shared by every
//! runtime.
//!
//! A waiter is the node of a suspended `listener::recv` (in its coroutine frame) holding the
//! task's waker and the delivery count its listener has seen. `notify(signo)` wakes, under the
//! list's mutex, every waiter whose count is behind the signal's counter and unlinks it; the
//! wakes happen after the mutex is released. A waiter links itself under the same mutex only
//! after checking the counter, so a delivery is either seen by that check or by the `notify`
//! that follows it (every delivery writes a pipe byte, and every byte read is followed by a
//! `notify_all`). Wakers may be woken from any thread, so one runtime's reader wakes the waiters
//! of every runtime.
//!
//! The lists are constant-initialized and never destroyed (trivial destructors), so a reader
//! still running during static destruction finds them intact.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/signal/handler.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace eddy::detail::signal {

/// A task suspended in `listener::recv`.
struct waiter : list_node<waiter> {
    waker w;                ///< guarded by the list's mutex while linked
    std::uint64_t seen = 0; ///< the delivery count the waiting listener has seen
};

struct waiter_list {
    std::mutex lock;
    intrusive_list<waiter> waiters;
};

inline constinit waiter_list waiter_lists[max_signal]{};

/// Wakes the waiters of `signo` whose seen count is behind its counter. Wakes in batches of
/// `wake_list::capacity`, each after the mutex is released, so it allocates nothing.
inline void notify(int signo) noexcept {
    waiter_list& list = waiter_lists[signo];
    for (bool more = true; more;) {
        more = false;
        wake_list wakes; // declared first: wakes after the guard unlocks
        std::lock_guard guard(list.lock);
        const std::uint64_t now = deliveries(signo);
        waiter* w = list.waiters.front();
        while (w != nullptr) {
            waiter* next = intrusive_list<waiter>::next(w);
            if (w->seen != now) {
                if (wakes.full()) {
                    more = true; // rescan after this batch: the woken ones are unlinked
                    break;
                }
                list.waiters.remove(w);
                wakes.push(std::move(w->w));
            }
            w = next;
        }
    }
}

/// `notify` for every signal eddy handles. Called by the readers after each read of the pipe.
inline void notify_all() noexcept {
    for (int signo = 1; signo < max_signal; ++signo) {
        if (installed(signo))
            notify(signo);
    }
}

/// Tasks waiting for `signo` now (tests and diagnostics).
[[nodiscard]] inline std::size_t waiting(int signo) {
    waiter_list& list = waiter_lists[signo];
    std::lock_guard guard(list.lock);
    return list.waiters.size();
}

} // namespace eddy::detail::signal
