#pragma once
//! One worker of the multi-thread scheduler: its run queue, LIFO slot, parker and counters.
//!
//! Owner: the worker's thread touches `lifo`, `tick`, `searching`, `rng`, `seen_progress` and
//! pushes/pops `queue`; other workers only steal from `queue`, read `progress` and unpark `park`.
//! Counters are written by the owner (relaxed load + store, no read-modify-write) and read by
//! anyone taking a metrics snapshot.

#include <eddy/config.hpp>

#include <eddy/runtime_metrics.hpp>

#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/scheduler/multi_thread/local_queue.hpp>
#include <eddy/detail/scheduler/park.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/util/os_thread.hpp>
#include <eddy/detail/util/owner_counter.hpp>

#include <cstdint>
#include <vector>

namespace eddy::detail {

/// xorshift32: cheap per-worker randomness for choosing whom to steal from.
class fast_rand {
public:
    explicit fast_rand(std::uint32_t seed) noexcept : state_(seed != 0 ? seed : 0x9E3779B9U) {}
    std::uint32_t next(std::uint32_t bound) noexcept {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        return static_cast<std::uint32_t>((std::uint64_t{state_} * bound) >> 32);
    }

private:
    std::uint32_t state_;
};

struct alignas(64) worker {
    worker(std::uint32_t i, std::uint32_t workers)
        : index(i), rng(0x2545F491U * (i + 1)), seen_progress(workers, 0) {}

    const std::uint32_t index;
    local_queue<> queue;
    parker park;

    // Owner-only state.
    task_header* lifo = nullptr; ///< the task the running task woke last: polled next
    std::uint32_t tick = 0;
    flush_batch flushes; ///< when this worker submits its tasks' I/O
    bool searching = false;
    fast_rand rng;
    /// Each other worker's `progress` at this worker's last look (see `rescue_stranded`).
    std::vector<std::uint32_t> seen_progress;

    /// `tick` as of the owner's last driver turn: whether the worker moves on, for the others.
    atomic<std::uint32_t> progress{0};

    os_thread thread;

    owner_counter polls;
    owner_counter steals;
    owner_counter steal_operations;
    owner_counter parks;
    owner_counter overflows;
    owner_counter spawned;
    shared_counter unparks; ///< bumped by notifiers (any thread)

    [[nodiscard]] worker_metrics snapshot() const noexcept {
        worker_metrics m;
        m.polls = polls.get();
        m.steals = steals.get();
        m.steal_operations = steal_operations.get();
        m.parks = parks.get();
        m.unparks = unparks.get();
        m.overflows = overflows.get();
        m.spawned = spawned.get();
        m.local_queue_depth = queue.len();
        return m;
    }
};

} // namespace eddy::detail
