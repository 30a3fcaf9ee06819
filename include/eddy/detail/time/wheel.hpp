#pragma once
//! The hierarchical timer wheel (Tokio's shape): 6 levels of 64 slots, 1 ms ticks.
//!
//!     level 0   1 ms slots      64 ms range
//!     level 1   64 ms slots     ~4 s range
//!     level 2   ~4 s slots      ~4.4 min range
//!     level 3   ~4.4 min slots  ~4.7 h range
//!     level 4   ~4.7 h slots    ~12.4 days range
//!     level 5   ~12.4 day slots ~2.2 years range
//!
//! An entry goes to the lowest level whose slots still tell its deadline apart from `elapsed_`
//! (the highest bit in which they differ picks the level), so insert and remove are O(1): a
//! list push and unlink plus a bit in the level's occupancy mask. `poll(now)` jumps from one
//! occupied slot to the next (no per-tick work): a level-0 slot fires; a higher slot is emptied
//! when time reaches its start and its entries cascade to lower levels, or fire if due.
//! Deadlines more than `max_duration` ahead are clamped to it.
//!
//! Entries that fire in the same poll come out in deadline order, and equal deadlines in the
//! order they were inserted (entries cascading from a higher level can land in a slot after
//! entries inserted there directly; each batch is re-sorted by (deadline, sequence)).
//!
//! Not thread-safe: the time driver owns a wheel and serializes access.

#include <eddy/config.hpp>

#include <eddy/detail/time/entry.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace eddy::detail {

class wheel {
public:
    static constexpr unsigned num_levels = 6;
    static constexpr unsigned bits_per_level = 6;
    static constexpr unsigned slots_per_level = 1U << bits_per_level;
    /// The farthest deadline the wheel represents, in ticks from `elapsed()`: 2^36 - 1 ms.
    static constexpr std::uint64_t max_duration =
        (std::uint64_t{1} << (bits_per_level * num_levels)) - 1;

    struct expiration {
        unsigned level;
        unsigned slot;
        std::uint64_t deadline; ///< the tick at which the slot is processed
    };

    /// The current tick: every entry with a deadline at or before it has fired.
    [[nodiscard]] std::uint64_t elapsed() const noexcept { return elapsed_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// Registers `e` for `deadline` (in ticks; clamped to `elapsed() + max_duration`). Returns
    /// false, registering nothing, when the deadline is already due: the caller fires it itself.
    bool insert(timer_entry* e, std::uint64_t deadline) noexcept {
        EDDY_ASSERT(!e->registered);
        if (deadline <= elapsed_)
            return false;
        e->deadline = std::min(deadline, elapsed_ + max_duration);
        e->sequence = next_sequence_++;
        add(e);
        ++size_;
        return true;
    }

    /// Unregisters `e` (registered). O(1).
    void remove(timer_entry* e) noexcept {
        EDDY_ASSERT(e->registered);
        level& lv = levels_[e->level];
        lv.slots[e->slot].remove(e);
        if (lv.slots[e->slot].empty())
            lv.occupied &= ~(std::uint64_t{1} << e->slot);
        e->registered = false;
        --size_;
    }

    /// When `poll` will next have something to do: the start of the earliest occupied slot.
    /// Entries in it may cascade rather than fire, so this can be earlier than any deadline,
    /// never later.
    [[nodiscard]] std::optional<expiration> next_expiration() const noexcept {
        if (size_ == 0)
            return std::nullopt;
        for (unsigned l = 0; l < num_levels; ++l) {
            if (auto e = level_next_expiration(l, elapsed_))
                return e;
        }
        return std::nullopt;
    }

    /// Advances to `now`, appending to `expired` every entry whose deadline is at or before it,
    /// in (deadline, insertion) order. Expired entries are no longer registered.
    void poll(std::uint64_t now, timer_list& expired) {
        while (true) {
            std::optional<expiration> exp = next_expiration();
            if (!exp || exp->deadline > now)
                break;
            process(*exp, expired);
            elapsed_ = exp->deadline;
        }
        elapsed_ = std::max(elapsed_, now);
    }

private:
    struct level {
        std::uint64_t occupied = 0; ///< bit i set when slots[i] is not empty
        std::array<timer_list, slots_per_level> slots;
    };

    static constexpr std::uint64_t slot_range(unsigned l) noexcept {
        return std::uint64_t{1} << (bits_per_level * l);
    }
    static constexpr std::uint64_t level_range(unsigned l) noexcept {
        return std::uint64_t{1} << (bits_per_level * (l + 1));
    }

    /// The level whose slots separate `deadline` from `now`: from the highest differing bit.
    static unsigned level_for(std::uint64_t now, std::uint64_t deadline) noexcept {
        std::uint64_t masked = (now ^ deadline) | (slots_per_level - 1);
        if (masked >= max_duration)
            masked = max_duration - 1;
        const auto significant = static_cast<unsigned>(63 - std::countl_zero(masked));
        return significant / bits_per_level;
    }

    void add(timer_entry* e) noexcept {
        const unsigned l = level_for(elapsed_, e->deadline);
        const auto slot =
            static_cast<unsigned>((e->deadline >> (bits_per_level * l)) & (slots_per_level - 1));
        e->level = static_cast<std::uint8_t>(l);
        e->slot = static_cast<std::uint8_t>(slot);
        e->registered = true;
        levels_[l].slots[slot].push_back(e);
        levels_[l].occupied |= std::uint64_t{1} << slot;
    }

    std::optional<expiration> level_next_expiration(unsigned l, std::uint64_t now) const noexcept {
        const std::uint64_t occupied = levels_[l].occupied;
        if (occupied == 0)
            return std::nullopt;
        const auto now_slot = static_cast<unsigned>((now / slot_range(l)) % slots_per_level);
        const std::uint64_t level_start = now & ~(level_range(l) - 1);
        if (l == num_levels - 1) {
            // The top level is a ring for far (clamped) deadlines: the slots after now's come
            // first, then the others one rotation ahead, now's own slot last. (Its entries belong
            // to the next rotation: one of this rotation would sit in a lower level.)
            const unsigned first = (now_slot + 1) % slots_per_level;
            const std::uint64_t rotated = std::rotr(occupied, static_cast<int>(first));
            const auto slot =
                (static_cast<unsigned>(std::countr_zero(rotated)) + first) % slots_per_level;
            std::uint64_t deadline = level_start + slot * slot_range(l);
            if (slot <= now_slot)
                deadline += level_range(l);
            return expiration{l, slot, deadline};
        }
        // Lower levels never hold a slot before now's: a slot is emptied when time reaches its
        // start.
        const std::uint64_t rotated = std::rotr(occupied, static_cast<int>(now_slot));
        const auto slot =
            (static_cast<unsigned>(std::countr_zero(rotated)) + now_slot) % slots_per_level;
        const std::uint64_t deadline = level_start + slot * slot_range(l);
        EDDY_ASSERT(deadline >= now);
        return expiration{l, slot, deadline};
    }

    void process(const expiration& exp, timer_list& expired) {
        level& lv = levels_[exp.level];
        timer_entry* e = lv.slots[exp.slot].take_all();
        lv.occupied &= ~(std::uint64_t{1} << exp.slot);
        const std::uint64_t saved = elapsed_;
        elapsed_ = exp.deadline; // cascading entries are placed relative to the slot's start
        batch_.clear();
        // A slot's entries are scattered in memory (each lives in its own task): walking them is a
        // chain of cache misses, so fetch the next while handling this one.
        for (timer_entry* next = nullptr; e != nullptr; e = next) {
            next = e->next;
            if (next != nullptr)
                __builtin_prefetch(next, 1);
            e->prev = e->next = nullptr;
            if (e->deadline <= exp.deadline) {
                e->registered = false;
                --size_;
                batch_.push_back(e);
            } else {
                add(e); // to a lower level
            }
        }
        elapsed_ = saved;
        const auto before = [](const timer_entry* a, const timer_entry* b) {
            return a->deadline != b->deadline ? a->deadline < b->deadline
                                              : a->sequence < b->sequence;
        };
        if (!std::is_sorted(batch_.begin(), batch_.end(), before))
            std::sort(batch_.begin(), batch_.end(), before);
        for (timer_entry* e : batch_)
            expired.push_back(e);
    }

    std::array<level, num_levels> levels_{};
    std::uint64_t elapsed_ = 0;
    std::uint64_t next_sequence_ = 0;
    std::size_t size_ = 0;
    std::vector<timer_entry*> batch_; ///< reused between polls
};

} // namespace eddy::detail
