#pragma once
//! The pieces every waiting awaitable of the sync layer shares.
//!
//! - `complete_or_yield(h)`: the end of an `await_suspend` whose outcome is ready. Spends one unit
//!   of cooperative budget and completes at once (false), or, with the budget spent, yields the
//!   task (true) to complete when it is resumed.
//! - `withdraw(lock, ...)`: what the destructor of an awaitable that may have left its waker in a
//!   primitive does. Under the primitive's lock it takes the waker back, from a single waker slot
//!   or from a node in a waiter list (only if the node is still linked: a node that was unlinked
//!   has been woken already). The waker is dropped after the lock is released.
//! - `wait_mode`: how a receive-like operation left `await_suspend`, for those that take their
//!   outcome only when the task resumes (so that a cancelled one loses nothing).

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <coroutine>
#include <cstdint>
#include <mutex>
#include <utility>

namespace eddy::detail {

/// See the header comment.
inline bool complete_or_yield(std::coroutine_handle<> h) {
    if (coop::try_consume())
        return false;
    coop::yield_current(h);
    return true;
}

/// Takes back a waker left in `slot`, under `lock`.
template <class Lock>
void withdraw(Lock& lock, waker& slot) noexcept {
    waker w; // destroyed after the guard unlocks
    std::lock_guard g(lock);
    w = std::move(slot);
}

/// Takes `node` (with its waker `w`) out of `list` if it is still there, under `lock`.
template <class Lock, class Node>
void withdraw(Lock& lock, intrusive_list<Node>& list, Node& node) noexcept {
    waker w; // destroyed after the guard unlocks
    std::lock_guard g(lock);
    if (node.linked()) {
        list.remove(&node);
        w = std::move(node.w);
    }
}

/// See the header comment.
enum class wait_mode : std::uint8_t {
    idle,    ///< not suspended (or finished)
    waiting, ///< our waker is in the primitive: the event we wait for will wake us
    yielded, ///< ready, but the budget was spent: we yielded and complete on resume
};

} // namespace eddy::detail
