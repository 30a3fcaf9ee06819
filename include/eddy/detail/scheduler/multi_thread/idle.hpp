#pragma once
//! Idle coordination of the multi-thread scheduler's workers (after Tokio's `idle.rs`).
//!
//! Decides which parked worker to wake when work appears, and bounds the number of workers that
//! search (steal) at once to half the workers, so a burst of wake-ups does not turn into a
//! thundering herd of thieves.
//!
//! `state_` packs two counters, changed together:
//!
//!     bits 16..31  unparked   workers not parked (running, searching or about to park)
//!     bits  0..15  searching  workers looking for work to steal
//!
//! `sleepers_` (under `mutex_`) lists the parked workers. A worker is removed from it exactly by
//! the notifier that wakes it, so a wake-up is neither lost nor given to two notifiers.
//!
//! No lost wake-up: a notifier queues its task, then reads `state_` (seq_cst); a worker that parks
//! decrements `state_` (seq_cst), and if it was the last searcher re-checks every queue
//! afterwards. Either the notifier sees a searcher that will find the task, or the parking
//! searcher sees the task.

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace eddy::detail {

class idle {
public:
    explicit idle(std::uint32_t workers) : workers_(workers), state_(workers << unpark_shift) {
        EDDY_ASSERT(workers > 0 && workers < (1U << unpark_shift));
        sleepers_.reserve(workers);
    }

    /// The worker to wake for new work, or none if a searcher already exists or none is parked.
    /// The returned worker counts as unparked and searching from now on.
    std::optional<std::uint32_t> worker_to_notify() {
        if (!notify_should_wakeup())
            return std::nullopt;
        std::lock_guard lock(mutex_);
        if (!notify_should_wakeup() || sleepers_.empty())
            return std::nullopt;
        // ORDERING: seq_cst, see the module comment.
        state_.fetch_add(1 | (1U << unpark_shift), memory_order_seq_cst);
        const std::uint32_t worker = sleepers_.back();
        sleepers_.pop_back();
        return worker;
    }

    /// A worker parks. Returns true when it was the last searching worker: it must then re-check
    /// all queues for work that arrived while notifiers assumed it would find it.
    bool transition_worker_to_parked(std::uint32_t worker, bool is_searching) {
        std::lock_guard lock(mutex_);
        const std::uint32_t dec = (1U << unpark_shift) | (is_searching ? 1U : 0U);
        // ORDERING: seq_cst, see the module comment.
        const std::uint32_t prev = state_.fetch_sub(dec, memory_order_seq_cst);
        sleepers_.push_back(worker);
        return is_searching && searching(prev) == 1;
    }

    /// A worker wants to steal. Refused when half the workers already search.
    bool transition_worker_to_searching() {
        // ORDERING: seq_cst, see the module comment.
        const std::uint32_t s = state_.load(memory_order_seq_cst);
        if (2 * searching(s) >= workers_)
            return false;
        state_.fetch_add(1, memory_order_seq_cst);
        return true;
    }

    /// A searching worker found work. True when it was the last searcher: it should wake another
    /// worker so that the remaining work keeps being looked for.
    bool transition_worker_from_searching() {
        // ORDERING: seq_cst, see the module comment.
        const std::uint32_t prev = state_.fetch_sub(1, memory_order_seq_cst);
        EDDY_ASSERT(searching(prev) > 0);
        return searching(prev) == 1;
    }

    /// Still parked (nobody took this worker out of the sleepers list)?
    bool is_parked(std::uint32_t worker) {
        std::lock_guard lock(mutex_);
        return std::find(sleepers_.begin(), sleepers_.end(), worker) != sleepers_.end();
    }

    /// Takes a specific parked worker out of the list (shutdown). True when it was parked.
    bool unpark_worker_by_id(std::uint32_t worker) {
        std::lock_guard lock(mutex_);
        auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
        if (it == sleepers_.end())
            return false;
        sleepers_.erase(it);
        state_.fetch_add(1U << unpark_shift, memory_order_seq_cst);
        return true;
    }

    [[nodiscard]] std::uint32_t num_searching() const noexcept {
        return searching(state_.load(memory_order_seq_cst));
    }

private:
    static constexpr std::uint32_t unpark_shift = 16;
    static constexpr std::uint32_t search_mask = (1U << unpark_shift) - 1;

    static constexpr std::uint32_t searching(std::uint32_t s) noexcept { return s & search_mask; }
    static constexpr std::uint32_t unparked(std::uint32_t s) noexcept { return s >> unpark_shift; }

    bool notify_should_wakeup() noexcept {
        std::uint32_t s = state_.load(memory_order_seq_cst);
        if (searching(s) != 0) {
            // ORDERING: we are about to leave our task to a searcher. A load may be reordered
            // before our earlier release store of that task (store-load reordering on x86), and
            // a searcher parking meanwhile, as the last one, would then miss it while we miss
            // it: re-read with a read-modify-write, which is totally ordered with its fetch_sub.
            // (When every worker is busy there is nobody to wake, and the plain load suffices:
            // the common case stays free of a contended locked instruction.)
            s = state_.fetch_add(0, memory_order_seq_cst);
        }
        return searching(s) == 0 && unparked(s) < workers_;
    }

    const std::uint32_t workers_;
    atomic<std::uint32_t> state_;
    std::mutex mutex_;
    std::vector<std::uint32_t> sleepers_;
};

} // namespace eddy::detail
