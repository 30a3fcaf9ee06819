#pragma once
//! `eddy::cancellation_token`: a cancellation signal shared by many tasks, organised as a tree
//! (Tokio's `CancellationToken`).
//!
//! ```cpp
//! eddy::cancellation_token root;
//! auto child = root.child_token();             // cancelled when root is
//! eddy::spawn([child]() -> eddy::task<> {
//!     co_await child.cancelled();              // resumes once cancelled
//! });
//! root.cancel();
//! ```
//!
//! - Copies share one state: cancelling any copy cancels them all. A default-constructed token
//!   is a new, uncancelled root. A moved-from token is empty; using it throws `std::logic_error`.
//! - `child_token()` makes a token that is cancelled when its parent is (and so transitively by
//!   every ancestor). Cancelling a child does not touch its parent or siblings. A child of a
//!   cancelled token starts cancelled.
//! - Dropping the last copy of a child unlinks it from its parent: dropped children cost nothing
//!   afterwards, and the parent's list does not grow. Its own children are adopted by its parent,
//!   so a grandchild is still cancelled with its grandparent.
//! - `co_await t.cancelled()` suspends until the token is cancelled and completes at once if it
//!   already is. The task resumes on its runtime, woken by the cancelling thread. Cancel-safe:
//!   destroying the operation while it waits just withdraws it (nothing is consumed).
//! - `drop_guard()` returns a guard that cancels the token when destroyed, unless `disarm()`ed.
//! - Every member may be called from any thread, on any copy. `cancel()` is O(size of the
//!   subtree) the first time and O(1) afterwards; `is_cancelled()` is one atomic load.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/coop.hpp>
#include <eddy/detail/sync/prim/cancel_tree.hpp>
#include <eddy/detail/sync/waiting.hpp>

#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <utility>

namespace eddy {

class cancellation_drop_guard;
class cancelled_operation;

namespace detail {
struct cancellation_token_access;
} // namespace detail

class cancellation_token {
public:
    /// A new root token, not cancelled.
    cancellation_token() : node_(detail::prim::cancel_node::make_root()) {}
    cancellation_token(const cancellation_token& other) noexcept : node_(other.node_) {
        if (node_ != nullptr)
            node_->add_handle();
    }
    cancellation_token(cancellation_token&& other) noexcept
        : node_(std::exchange(other.node_, nullptr)) {}
    cancellation_token& operator=(const cancellation_token& other) noexcept {
        if (this != &other) {
            if (other.node_ != nullptr)
                other.node_->add_handle();
            reset();
            node_ = other.node_;
        }
        return *this;
    }
    cancellation_token& operator=(cancellation_token&& other) noexcept {
        if (this != &other) {
            reset();
            node_ = std::exchange(other.node_, nullptr);
        }
        return *this;
    }
    ~cancellation_token() { reset(); }

    /// Cancels this token, its copies and all its descendants, and wakes their waiters.
    /// Idempotent.
    void cancel() { checked().cancel(); }

    /// True once this token (or an ancestor, before it was dropped) was cancelled.
    [[nodiscard]] bool is_cancelled() const { return checked().is_cancelled(); }

    /// A new token cancelled together with this one; see the header comment.
    [[nodiscard]] cancellation_token child_token() const {
        return cancellation_token(checked().make_child());
    }

    /// An operation that completes once the token is cancelled. Holds a copy of the token, so
    /// it may outlive this object.
    [[nodiscard]] cancelled_operation cancelled() const;

    /// A guard that cancels this token when it is destroyed, unless disarmed.
    [[nodiscard]] cancellation_drop_guard drop_guard() const;

    /// True for copies of the same token (not for parent and child).
    friend bool operator==(const cancellation_token& a, const cancellation_token& b) noexcept {
        return a.node_ == b.node_;
    }

    /// False for a moved-from token.
    [[nodiscard]] bool valid() const noexcept { return node_ != nullptr; }

private:
    friend class cancelled_operation;
    friend class cancellation_drop_guard;
    friend struct detail::cancellation_token_access;

    explicit cancellation_token(detail::prim::cancel_node* n) noexcept : node_(n) {}

    detail::prim::cancel_node& checked() const {
        if (node_ == nullptr)
            throw std::logic_error("eddy::cancellation_token: used after being moved from");
        return *node_;
    }

    void reset() noexcept {
        if (auto* n = std::exchange(node_, nullptr))
            n->drop_handle();
    }

    detail::prim::cancel_node* node_;
};

/// `co_await token.cancelled()`: completes once the token is cancelled. Cancel-safe.
class [[nodiscard]] cancelled_operation {
public:
    cancelled_operation(cancelled_operation&& other) noexcept : token_(std::move(other.token_)) {
        EDDY_ASSERT(!other.registered_);
    }
    cancelled_operation& operator=(cancelled_operation&&) = delete;
    ~cancelled_operation() {
        if (registered_)
            token_.node_->remove_waiter(node_);
    }

    bool await_ready() const noexcept {
        return detail::coop::has_remaining() && token_.node_->is_cancelled() &&
               detail::coop::try_consume();
    }

    bool await_suspend(std::coroutine_handle<> h) {
        waker w = current_waker(h);
        if (token_.node_->add_waiter(node_, std::move(w))) {
            registered_ = true;
            return true;
        }
        // Cancelled already: ready, after a yield if the budget is spent.
        return detail::complete_or_yield(h);
    }

    void await_resume() noexcept {
        // Only the cancellation wakes a registered operation, and it unlinked us first.
        registered_ = false;
    }

private:
    friend class cancellation_token;
    explicit cancelled_operation(cancellation_token t) noexcept : token_(std::move(t)) {}

    cancellation_token token_;
    detail::prim::cancel_waiter node_;
    bool registered_ = false;
};

/// Cancels its token on destruction unless `disarm()` was called. Move-only.
class [[nodiscard]] cancellation_drop_guard {
public:
    cancellation_drop_guard(cancellation_drop_guard&& other) noexcept = default;
    cancellation_drop_guard& operator=(cancellation_drop_guard&& other) noexcept {
        if (this != &other) {
            fire();
            token_ = std::move(other.token_);
        }
        return *this;
    }
    cancellation_drop_guard(const cancellation_drop_guard&) = delete;
    cancellation_drop_guard& operator=(const cancellation_drop_guard&) = delete;
    ~cancellation_drop_guard() { fire(); }

    /// Gives the token back without cancelling it; the guard does nothing afterwards.
    cancellation_token disarm() noexcept { return std::move(token_); }

private:
    friend class cancellation_token;
    explicit cancellation_drop_guard(cancellation_token t) noexcept : token_(std::move(t)) {}

    void fire() noexcept {
        if (token_.valid()) {
            const cancellation_token t(std::move(token_));
            t.node_->cancel();
        }
    }

    cancellation_token token_;
};

inline cancelled_operation cancellation_token::cancelled() const {
    checked();
    return cancelled_operation(*this);
}

inline cancellation_drop_guard cancellation_token::drop_guard() const {
    checked();
    return cancellation_drop_guard(*this);
}

} // namespace eddy
