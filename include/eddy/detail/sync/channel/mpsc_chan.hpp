#pragma once
//! The shared state of an mpsc channel: a ring of messages, the bounded channel's permits, the
//! queue of suspended senders, the receiver's waker and the close flags, all under one spin lock.
//!
//! Capacity accounting (bounded channels). Every slot of capacity is in exactly one place:
//!
//!     capacity == free_permits + queue.size() + permits_out + rx_local.size() + unreleased
//!
//! (`permits_out`: reserved `permit` objects alive; `rx_local`: the receiver's batch, see below;
//! `unreleased`: slots the receiver freed without the lock). A message taken by the receiver
//! releases its slot: it goes to the first suspended sender if there is one (FIFO, so senders
//! are served in the order they asked), else back to the pool. A suspended `send` is granted by
//! pushing its value straight into the queue on its behalf, under the lock, so a granted send has
//! already delivered: there is nothing to hand on if its task is cancelled before it resumes. A
//! suspended `reserve` is granted a permit (`permits_out + 1`); if its task is cancelled before it
//! resumes, its destructor releases that permit again, to the next sender in line.
//!
//! The ring never grows under a grant: it is grown (which may throw) only when a slot is taken
//! from `free_permits`, to hold `capacity - free_permits` elements, so pushes of granted and
//! reserved values never allocate. (The receiver's swap below keeps that: the ring it hands the
//! senders is first made as large as the one it takes.)
//!
//! Closing. The receiver is told "closed and drained" (`terminal_locked`) once no permit is out
//! and either every sender is gone or the receiver closed. Closing the receiver fails every
//! suspended sender (their values stay with them) and wakes `closed()` waiters. Dropping the
//! receiver also destroys the buffered messages, outside the lock.
//!
//! The receiver's batch: when the receiver finds its own batch (`rx_local`) empty, it swaps the
//! whole shared queue into it under the lock, then pops from the batch without locking. The
//! senders get the batch's empty buffer back, so the two rings recycle each other's memory.
//!
//! A bounded channel still frees each slot as its message is taken, without the lock: the
//! receiver adds it to `unreleased`, and a sender that finds no free slot takes them from there.
//! A sender about to wait raises `senders_waiting` before it looks; the receiver reads it after
//! adding (both sequentially consistent), so either the sender sees the slot or the receiver sees
//! the flag and grants the waiting senders under the lock at once: no slot stays idle while a
//! sender waits.
//!
//! Wakers are always moved out under the lock and woken after it is released.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/channel/ring.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/sync/wake_list.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

namespace eddy::detail::channel {

enum class send_status : std::uint8_t {
    waiting, ///< in the senders' queue
    done,    ///< send: the value is in the queue; reserve: a permit was granted
    closed,  ///< the receiver closed; a send keeps its value
    full,    ///< (try paths only) no slot free
};

/// A suspended `send` (value != nullptr) or `reserve` (value == nullptr). Lives in the awaiter.
template <class T>
struct send_waiter : list_node<send_waiter<T>> {
    waker w;
    std::optional<T>* value = nullptr;
    send_status status = send_status::waiting;
};

/// A task waiting in `sender::closed()`.
struct closed_waiter : list_node<closed_waiter> {
    waker w;
};

template <class T>
class mpsc_chan {
public:
    /// `capacity` 0 makes an unbounded channel.
    explicit mpsc_chan(std::size_t capacity) noexcept
        : bounded(capacity != 0), capacity(capacity), free_permits(capacity) {}

    // ---- ownership ---------------------------------------------------------------------------

    void retain() noexcept { refs_.fetch_add(1, memory_order_relaxed); }
    void release() noexcept {
        // ORDERING: acq_rel so the deleting side sees every other owner's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1)
            delete this;
    }

    void add_sender() noexcept {
        senders.fetch_add(1, memory_order_relaxed);
        retain();
    }

    /// A sender handle is gone. The last one closes the channel for the receiver.
    void drop_sender() noexcept {
        // ORDERING: acq_rel: the receiver that reads 0 (acquire, under the lock) sees every
        // message this sender pushed.
        if (senders.fetch_sub(1, memory_order_acq_rel) == 1) {
            waker rx;
            {
                std::lock_guard g(lock);
                if (terminal_locked())
                    take_rx_waker(rx);
            }
            rx.wake();
        }
        release();
    }

    // ---- under the lock ----------------------------------------------------------------------

    /// Closed and drained from the receiver's point of view, apart from what is still queued.
    [[nodiscard]] bool terminal_locked() const noexcept {
        return permits_out == 0 &&
               (rx_closed.load(memory_order_relaxed) || senders.load(memory_order_acquire) == 0);
    }

    /// Moves the receiver's waker (if it waits) into `rx`, never emptying an `rx` already taken.
    void take_rx_waker(waker& rx) noexcept {
        if (rx_waker)
            rx = std::move(rx_waker);
    }

    /// Receiver only, under the lock: the receiver would not wait (a message is queued or
    /// batched, or the channel is closed and drained).
    [[nodiscard]] bool rx_ready_locked() const noexcept {
        return !rx_local.empty() || !queue.empty() || terminal_locked();
    }

    /// Receiver only, no lock needed: pops from the receiver's batch and frees its slot.
    bool pop_local(std::optional<T>& out) noexcept {
        if (rx_local.empty())
            return false;
        out.emplace(rx_local.pop_front());
        release_unlocked(1);
        return true;
    }

    /// Receiver only, without the lock: `n` messages taken from the batch free their slots (see
    /// the header comment). Suspended senders are granted at once.
    void release_unlocked(std::size_t n) noexcept {
        if (!bounded || n == 0)
            return;
        // ORDERING: seq_cst, with the flag's store and the exchange in take_free_slot_locked:
        // either that sender's exchange sees these slots or this load sees its flag.
        unreleased.fetch_add(n, memory_order_seq_cst);
        while (senders_waiting.load(memory_order_seq_cst)) {
            waker sw;
            waker rx;
            bool more = false;
            {
                std::lock_guard g(lock);
                more = grant_unreleased_locked(sw, rx);
            }
            sw.wake();
            rx.wake();
            if (!more)
                return;
        }
    }

    /// Hands one unreleased slot to the first suspended sender; true if it did. Once no sender
    /// waits, the flag drops and the unreleased slots join the pool.
    bool grant_unreleased_locked(waker& sw, waker& rx) noexcept {
        if (send_waiters.empty()) {
            senders_waiting.store(false, memory_order_relaxed);
            free_permits += unreleased.exchange(0, memory_order_relaxed);
            return false;
        }
        // Only the receiver (the caller) adds, and senders take under the lock: no race here.
        const std::size_t n = unreleased.load(memory_order_relaxed);
        if (n == 0)
            return false; // a sender took them first
        unreleased.store(n - 1, memory_order_relaxed);
        release_slot_locked(sw, rx);
        return true;
    }

    /// Takes a free slot for a new message or permit, growing the ring first. False when none is
    /// free or senders are already queued (they go first); `senders_waiting` is then raised for
    /// the caller, which is about to wait (a try_ path that gives up leaves it raised, and the
    /// receiver lowers it). May throw `std::bad_alloc` (then no slot was taken).
    bool take_free_slot_locked() {
        if (!send_waiters.empty())
            return false;
        if (free_permits == 0) {
            // ORDERING: seq_cst, see release_unlocked.
            senders_waiting.store(true, memory_order_seq_cst);
            free_permits += unreleased.exchange(0, memory_order_seq_cst);
            if (free_permits == 0)
                return false;
            senders_waiting.store(false, memory_order_relaxed); // no sender waits
        }
        queue.reserve(capacity - free_permits + 1);
        --free_permits;
        return true;
    }

    /// Non-blocking send of `*v`. On `done` the value was moved into the queue and `rx` holds the
    /// receiver's waker if it was waiting; on `closed`/`full` `*v` is untouched.
    send_status try_send_locked(std::optional<T>& v, waker& rx) {
        if (rx_closed.load(memory_order_relaxed))
            return send_status::closed;
        if (bounded) {
            if (!take_free_slot_locked())
                return send_status::full;
            queue.push_back_nogrow(std::move(*v));
        } else {
            queue.push_back(std::move(*v));
        }
        take_rx_waker(rx);
        return send_status::done;
    }

    /// A slot came free (a message was popped, or a permit dropped unused): hand it to the first
    /// suspended sender, or back to the pool. `sw` receives the granted sender's waker; `rx` the
    /// receiver's when a granted send pushed a message (the caller may be someone else than the
    /// receiver).
    void release_slot_locked(waker& sw, waker& rx) noexcept {
        if (send_waiter<T>* w = send_waiters.pop_front()) {
            if (w->value != nullptr) {
                // SAFETY: the slot just freed keeps `capacity - free_permits` unchanged, and the
                // ring holds that many, so this push does not allocate.
                queue.push_back_nogrow(std::move(**w->value));
                take_rx_waker(rx);
            } else {
                ++permits_out;
            }
            w->status = send_status::done;
            sw = std::move(w->w);
            return;
        }
        ++free_permits;
    }

    /// Receiver only: pops the oldest message into `out` (and releases its slot). The queue must
    /// not be empty, and the batch must be: the whole queue becomes the batch. May throw
    /// `std::bad_alloc` (bounded: growing the batch's ring; then nothing changed).
    void pop_locked(std::optional<T>& out, waker& sw) {
        EDDY_ASSERT(rx_local.empty());
        if (bounded)
            rx_local.reserve(queue.capacity()); // the senders' next ring: see the header comment
        queue.swap(rx_local);
        out.emplace(rx_local.pop_front());
        if (bounded) {
            waker rx_unused; // the caller is the receiver: it is not waiting
            release_slot_locked(sw, rx_unused);
        }
    }

    /// A reserved permit is consumed (`value` pushed) or dropped (`value` empty).
    void finish_permit_locked(std::optional<T>* value, waker& sw, waker& rx) noexcept {
        EDDY_ASSERT(permits_out != 0);
        --permits_out;
        if (value != nullptr && !rx_dropped) {
            queue.push_back_nogrow(std::move(**value));
            take_rx_waker(rx);
            return;
        }
        // The slot was never used (or the receiver is gone and the value is dropped by the
        // caller): give it back.
        release_slot_locked(sw, rx);
        if (terminal_locked())
            take_rx_waker(rx);
    }

    /// The receiver closes: fails every suspended sender, wakes the `closed()` waiters.
    void close_rx_locked(wake_list& wakes) {
        // ORDERING: release pairs with the acquire in `sender::is_closed`.
        rx_closed.store(true, memory_order_release);
        while (send_waiter<T>* w = send_waiters.front()) {
            wakes.push(std::move(w->w));
            send_waiters.remove(w);
            w->status = send_status::closed;
        }
        while (closed_waiter* w = closed_waiters.front()) {
            wakes.push(std::move(w->w));
            closed_waiters.remove(w);
        }
    }

    // ---- state -------------------------------------------------------------------------------

    // The lock and what it guards share cache lines; the receiver-only batch and the counters
    // changed outside the lock get lines of their own (no false sharing with the senders).
    alignas(64) spin_lock lock;
    ring<T> queue;
    const bool bounded;
    const std::size_t capacity;  ///< 0 when unbounded
    std::size_t free_permits;    ///< bounded: slots neither queued nor reserved
    std::size_t permits_out = 0; ///< bounded: `permit` objects alive
    intrusive_list<send_waiter<T>> send_waiters;
    intrusive_list<closed_waiter> closed_waiters;
    waker rx_waker;                ///< the receiver's, while it waits
    atomic<bool> rx_closed{false}; ///< written under the lock; read anywhere
    bool rx_dropped = false;
    alignas(64) ring<T> rx_local;               ///< the receiver's batch (receiver only)
    atomic<std::size_t> unreleased{0};          ///< bounded: slots freed by the receiver, unlocked
    atomic<bool> senders_waiting{false};        ///< bounded: a sender may be suspended for a slot
    alignas(64) atomic<std::size_t> senders{1}; ///< sender handles alive (changed unlocked)

private:
    ~mpsc_chan() = default;

    atomic<std::uint32_t> refs_{2}; ///< sender handles + permits + the receiver
};

} // namespace eddy::detail::channel
