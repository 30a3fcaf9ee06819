#pragma once
//! `eddy::barrier`: lets `n` tasks wait for each other, round after round (Tokio's `Barrier`).
//!
//! ```cpp
//! auto b = std::make_shared<eddy::barrier>(3);
//! // in each of 3 tasks:
//! auto r = co_await b->wait();
//! if (r.is_leader()) { /* exactly one task per round */ }
//! ```
//!
//! - `wait()` suspends until `n` tasks have called it in the current round (generation). The
//!   last one to arrive does not suspend: it is the round's leader (`is_leader()`), and it wakes
//!   the others, which resume on their runtimes. The barrier is then ready for the next round.
//!   A barrier of `n <= 1` releases every `wait()` at once, each as leader.
//! - Cancel-safe, unlike Tokio's: a `wait()` destroyed before its round completed withdraws its
//!   arrival, as if it had never been called; the round then needs another arrival. One destroyed
//!   after its round completed (woken, not yet resumed) changes nothing: the round counted it.
//!   (If the leader itself is cancelled while it yields for the cooperative budget, the round has
//!   still completed, but nobody observes `is_leader()` for it.)
//! - Every member may be called from any thread. The barrier must outlive its waiters.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/waiting.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>

namespace eddy {

/// What `barrier::wait` returns.
class barrier_wait_result {
public:
    explicit barrier_wait_result(bool leader) noexcept : leader_(leader) {}
    /// True for exactly one waiter per round: the one that completed it.
    [[nodiscard]] bool is_leader() const noexcept { return leader_; }

private:
    bool leader_;
};

class barrier {
public:
    /// A barrier for `n` tasks per round.
    explicit barrier(std::size_t n) noexcept : n_(n) {}
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;
    ~barrier() { EDDY_ASSERT(waiters_.empty()); }

    class wait_operation;

    /// Arrives at the barrier and waits for the round to complete. Cancel-safe (header comment).
    [[nodiscard]] wait_operation wait() noexcept;

    /// Tasks per round.
    [[nodiscard]] std::size_t parties() const noexcept { return n_; }

private:
    struct waiter : detail::list_node<waiter> {
        waker wake;
        std::uint64_t generation = 0; ///< the round it arrived in
    };

    std::size_t n_;
    detail::spin_lock lock_;
    std::size_t arrived_ = 0;                ///< arrivals in the current round; guarded by lock_
    std::uint64_t generation_ = 0;           ///< rounds completed; guarded by lock_
    detail::intrusive_list<waiter> waiters_; ///< FIFO, so older rounds come first; lock_
};

/// `co_await b.wait()`: a `barrier_wait_result`. Movable only before it is awaited.
class [[nodiscard]] barrier::wait_operation {
public:
    wait_operation(wait_operation&& other) noexcept : barrier_(other.barrier_) {
        EDDY_ASSERT(other.phase_ == phase::init);
    }
    wait_operation& operator=(wait_operation&&) = delete;
    ~wait_operation() {
        if (phase_ == phase::queued)
            withdraw();
    }

    bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> h) {
        waker w = current_waker(h);
        detail::wake_list wakes;
        barrier& b = *barrier_;
        b.lock_.lock();
        if (++b.arrived_ < b.n_) {
            node_.wake = std::move(w);
            node_.generation = b.generation_;
            b.waiters_.push_back(&node_);
            phase_ = phase::queued;
            b.lock_.unlock();
            return true;
        }
        // The last arrival: complete the round and release it.
        const std::uint64_t round = b.generation_;
        b.arrived_ = 0;
        ++b.generation_;
        phase_ = phase::leader;
        for (;;) {
            // Waiters of this round are at the front; later rounds queue behind them.
            while (!wakes.full() && !b.waiters_.empty() &&
                   b.waiters_.front()->generation == round) {
                waiter* x = b.waiters_.pop_front();
                wakes.push(std::move(x->wake));
            }
            if (b.waiters_.empty() || b.waiters_.front()->generation != round)
                break;
            b.lock_.unlock();
            wakes.wake_all();
            b.lock_.lock();
        }
        b.lock_.unlock();
        wakes.wake_all();
        return detail::complete_or_yield(h);
    }

    barrier_wait_result await_resume() noexcept {
        const bool leader = phase_ == phase::leader;
        phase_ = phase::done;
        return barrier_wait_result(leader);
    }

private:
    friend class barrier;
    explicit wait_operation(barrier& b) noexcept : barrier_(&b) {}

    enum class phase : unsigned char { init, queued, leader, done };

    void withdraw() noexcept {
        waker dropped;
        {
            std::lock_guard guard(barrier_->lock_);
            if (node_.linked()) {
                barrier_->waiters_.remove(&node_);
                dropped = std::move(node_.wake);
                // Linked in the current round: it has not completed, so take the arrival back.
                // Linked in an older round: its leader is still releasing it in batches; the
                // round counted it and nothing is left to undo.
                if (node_.generation == barrier_->generation_)
                    --barrier_->arrived_;
            }
        }
        phase_ = phase::done;
    }

    barrier* barrier_;
    waiter node_;
    phase phase_ = phase::init;
};

inline barrier::wait_operation barrier::wait() noexcept {
    return wait_operation(*this);
}

} // namespace eddy
