#pragma once
//! The shared state behind `eddy::cancellation_token`: a tree of nodes, one per token family
//! (a token and its copies), with the waiters of each node.
//!
//! Design:
//! - One spin lock per tree (`cancel_tree::lock`) guards every link in it (parent, children,
//!   waiters) and the pending list. A single lock keeps cancellation of a whole subtree, the
//!   adoption of grandchildren and concurrent drops free of lock-ordering problems; the critical
//!   sections are short (cancel is O(subtree) once per node, for the node's lifetime).
//! - Cancelling a node detaches it from its parent and marks its whole subtree cancelled, then
//!   detaches every node in it from its children: a cancelled node links nothing. The waiters of
//!   the subtree move to the tree's `pending` list and are woken in batches outside the lock.
//! - When the last token of a node goes away, its children are adopted by its parent (or become
//!   roots) and it leaves its parent's list: dropped children never pile up in a parent, and a
//!   grandchild stays reachable from its grandparent's cancellation.
//! - Lifetimes: a node lives while tokens (and `cancelled()` operations, which hold a token)
//!   refer to it; the tree lives while it has nodes.
//!
//! Thread safety: every function may be called from any thread.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <cstddef>
#include <mutex>
#include <utility>

namespace eddy::detail::prim {

/// A task waiting for its token's cancellation (lives in the awaiting coroutine's frame).
struct cancel_waiter : list_node<cancel_waiter> {
    waker wake; ///< guarded by the tree lock while linked
};

struct cancel_tree {
    spin_lock lock;
    intrusive_list<cancel_waiter> pending; ///< waiters of cancelled nodes, not woken yet
    atomic<std::size_t> refs{1};           ///< one per node

    void retain() noexcept { refs.fetch_add(1, memory_order_relaxed); }
    void release() noexcept {
        // ORDERING: acq_rel so the deleting thread sees every other node's last use.
        if (refs.fetch_sub(1, memory_order_acq_rel) == 1)
            delete this;
    }
};

class cancel_node : public list_node<cancel_node> {
public:
    /// A new root, in a tree of its own. One handle (the caller's).
    static cancel_node* make_root() {
        auto* tree = new cancel_tree();
        try {
            return new cancel_node(tree);
        } catch (...) {
            tree->release();
            throw;
        }
    }

    /// A new child of `this` (already cancelled if `this` is). One handle (the caller's).
    cancel_node* make_child() {
        tree_->retain();
        cancel_node* child = nullptr;
        try {
            child = new cancel_node(tree_);
        } catch (...) {
            tree_->release();
            throw;
        }
        std::lock_guard guard(tree_->lock);
        if (cancelled_.load(memory_order_relaxed)) {
            // ORDERING: release for readers of the child's flag (as in cancel).
            child->cancelled_.store(true, memory_order_release);
        } else {
            child->parent_ = this;
            children_.push_back(child);
        }
        return child;
    }

    void add_handle() noexcept { handles_.fetch_add(1, memory_order_relaxed); }

    /// Drops one handle; the last one unlinks the node (its children go to its parent) and
    /// frees it.
    void drop_handle() noexcept {
        // ORDERING: acq_rel so the freeing thread sees the other handles' last use.
        if (handles_.fetch_sub(1, memory_order_acq_rel) != 1)
            return;
        cancel_tree* tree = tree_;
        {
            std::lock_guard guard(tree->lock);
            EDDY_ASSERT(waiters_.empty());
            while (cancel_node* c = children_.pop_front()) {
                c->parent_ = parent_;
                if (parent_ != nullptr)
                    parent_->children_.push_back(c);
            }
            if (parent_ != nullptr)
                parent_->children_.remove(this);
        }
        delete this;
        tree->release();
    }

    [[nodiscard]] bool is_cancelled() const noexcept {
        // ORDERING: acquire pairs with the release store in cancel: what the canceller did
        // before cancel() is visible to whoever sees the flag.
        return cancelled_.load(memory_order_acquire);
    }

    /// Cancels this node and its subtree, then wakes their waiters. Idempotent.
    void cancel() noexcept {
        if (is_cancelled())
            return;
        wake_list wakes;
        cancel_tree& tree = *tree_;
        tree.lock.lock();
        if (!cancelled_.load(memory_order_relaxed)) {
            if (parent_ != nullptr) {
                parent_->children_.remove(this);
                parent_ = nullptr;
            }
            intrusive_list<cancel_node> work;
            work.push_back(this);
            while (cancel_node* x = work.pop_front()) {
                // ORDERING: release, see is_cancelled.
                x->cancelled_.store(true, memory_order_release);
                tree.pending.splice_back(x->waiters_);
                while (cancel_node* c = x->children_.pop_front()) {
                    c->parent_ = nullptr;
                    work.push_back(c);
                }
            }
        }
        // Wake the pending waiters (ours, and any another cancel left for us to help with).
        for (;;) {
            while (!wakes.full() && !tree.pending.empty())
                wakes.push(std::move(tree.pending.pop_front()->wake));
            if (tree.pending.empty())
                break;
            tree.lock.unlock();
            wakes.wake_all();
            tree.lock.lock();
        }
        tree.lock.unlock();
    }

    /// Queues `w` with `wk` unless the node is cancelled (then returns false).
    bool add_waiter(cancel_waiter& w, waker&& wk) noexcept {
        std::lock_guard guard(tree_->lock);
        if (cancelled_.load(memory_order_relaxed))
            return false;
        w.wake = std::move(wk);
        waiters_.push_back(&w);
        return true;
    }

    /// Unqueues `w` if it was not woken yet.
    void remove_waiter(cancel_waiter& w) noexcept {
        waker dropped;
        {
            std::lock_guard guard(tree_->lock);
            if (!w.linked())
                return;
            // A cancelled node's waiters were moved to the tree's pending list.
            if (cancelled_.load(memory_order_relaxed)) {
                tree_->pending.remove(&w);
            } else {
                waiters_.remove(&w);
            }
            dropped = std::move(w.wake);
        }
    }

    /// For tests: the number of live children linked under this node.
    [[nodiscard]] std::size_t child_count() noexcept {
        std::lock_guard guard(tree_->lock);
        return children_.size();
    }

private:
    explicit cancel_node(cancel_tree* tree) noexcept : tree_(tree) {}
    ~cancel_node() = default;

    cancel_tree* tree_;
    atomic<std::size_t> handles_{1};
    atomic<bool> cancelled_{false};         ///< written under the tree lock
    cancel_node* parent_ = nullptr;         ///< tree lock; null for roots and cancelled nodes
    intrusive_list<cancel_node> children_;  ///< tree lock
    intrusive_list<cancel_waiter> waiters_; ///< tree lock
};

} // namespace eddy::detail::prim
