#pragma once
//! The header of every eddy coroutine frame, and the frame allocator that places it.
//!
//! `task<T>`'s promise allocates its frame with this header in front of it:
//!
//!     [ task_header (64 bytes) ][ coroutine frame (resume/destroy pointers, promise, locals) ]
//!     ^ allocation start        ^ what operator new returns, == coroutine_handle::address()
//!
//! For a task that is only ever awaited, the header is inert. `spawn` turns the frame itself into
//! a runtime task: the header then carries the state word, the owned-list links and the join
//! waker, so a spawned task costs one allocation. The header is kept to one cache line (64 bytes):
//! run queues hold task pointers rather than linking through the header, and the flags a task
//! needs are derived from fields it has anyway (see the accessors). Because the header sits outside
//! the coroutine frame, it outlives the frame: cancelling a task destroys the frame at its
//! suspension point (running destructors) while the join handle can still read COMPLETE |
//! CANCELLED.
//!
//! Fields other than `state` belong to whoever holds RUNNING (the poller), except: the owned-list
//! links belong to the owned list's lock; `join_waker` follows the JOIN_WAKER protocol documented
//! in state.hpp; `id_and_size_` is written once (allocation, spawn) before the task is shared.

#include <eddy/config.hpp>

#include <eddy/detail/task/frame_pool.hpp>
#include <eddy/detail/task/state.hpp>
#include <eddy/detail/task/wake_target.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>

namespace eddy::detail {

class scheduler;

/// `resume_point` (from `resumable`) is set at spawn and reset to null when the frame is destroyed
/// (cancellation or deallocation).
struct alignas(16) task_header : resumable {
    task_state state;
    task_header* owned_prev = nullptr; ///< non-null while linked into an owned-task list
    task_header* owned_next = nullptr;
    scheduler* sched = nullptr;
    wake_target* join_waker = nullptr;

    explicit task_header(std::size_t frame_size) noexcept : resumable{{nullptr}, {}} {
        const std::size_t units = (frame_size + size_unit - 1) / size_unit;
        id_and_size_ = units <= size_mask ? units : size_mask;
    }

    /// Spawned: the memory belongs to the reference count (the vtable is set by spawn).
    [[nodiscard]] bool spawned() const noexcept { return vtable != nullptr; }

    /// The coroutine frame was destroyed (only meaningful once spawned).
    [[nodiscard]] bool frame_destroyed() const noexcept { return !resume_point; }

    [[nodiscard]] std::uint64_t id() const noexcept { return id_and_size_ >> size_bits; }
    void set_id(std::uint64_t id) noexcept {
        id_and_size_ = (id << size_bits) | (id_and_size_ & size_mask);
    }

    /// Bytes of header + frame, or 0 when the frame was too large to record (not pooled then).
    [[nodiscard]] std::size_t allocation_size() const noexcept {
        const std::uint64_t units = id_and_size_ & size_mask;
        return units == size_mask ? 0 : sizeof(task_header) + units * size_unit;
    }

    [[nodiscard]] void* frame() noexcept {
        return reinterpret_cast<std::byte*>(this) + sizeof(*this);
    }

    [[nodiscard]] std::coroutine_handle<> coroutine() noexcept {
        return std::coroutine_handle<>::from_address(frame());
    }

    static task_header* from_frame(void* frame) noexcept {
        // SAFETY: every eddy frame was allocated by allocate_frame, which placed a task_header
        // immediately before the address it returned.
        return std::launder(
            reinterpret_cast<task_header*>(static_cast<std::byte*>(frame) - sizeof(task_header)));
    }

private:
    // Bits 16..63: the task id (unique for the process, 2^48 spawns); bits 0..15: the frame size
    // in 8-byte units, all ones when larger than that records (512 KiB).
    static constexpr unsigned size_bits = 16;
    static constexpr std::uint64_t size_mask = (std::uint64_t{1} << size_bits) - 1;
    static constexpr std::size_t size_unit = 8;

public:
    /// The allocation size for a frame of `frame_size` bytes: what `allocation_size()` will say.
    static constexpr std::size_t allocation_size_for(std::size_t frame_size) noexcept {
        return sizeof(task_header) + (frame_size + size_unit - 1) / size_unit * size_unit;
    }
    std::uint64_t id_and_size_ = 0;
};

static_assert(sizeof(task_header) % alignof(std::max_align_t) == 0,
              "the frame after the header must stay suitably aligned");
static_assert(sizeof(task_header) == 64, "the task header is meant to fill one cache line");

/// Typed operations of a spawned task, reached through the header's wake vtable.
struct task_vtable : wake_vtable {
    /// The exception the finished coroutine stored, if any. Only valid while the frame exists.
    std::exception_ptr (*exception)(task_header*) noexcept;
};

/// Allocates header + frame; returns the frame address.
inline void* allocate_frame(std::size_t frame_size) {
    // The size recorded in the header must name the same pool class as the size allocated.
    void* mem = allocate_frame_memory(task_header::allocation_size_for(frame_size));
    // SAFETY: `mem` is fresh storage large enough for the header; the frame follows it.
    auto* header = ::new (mem) task_header(frame_size);
    EDDY_ASSERT(header->allocation_size() == 0 ||
                header->allocation_size() == task_header::allocation_size_for(frame_size));
    return header->frame();
}

/// Frees the memory of a header and its (already destroyed) frame.
inline void free_frame_memory(task_header* header) noexcept {
    const std::size_t total = header->allocation_size();
    header->~task_header();
    if (total == 0) {
        ::operator delete(static_cast<void*>(header)); // too large to record: never pooled
    } else {
        deallocate_frame_memory(static_cast<void*>(header), total);
    }
}

/// The coroutine frame's `operator delete`: frees at once for a plain task; a spawned task's
/// memory stays until its last reference goes (see `release_task`).
inline void deallocate_frame(void* frame) noexcept {
    task_header* header = task_header::from_frame(frame);
    if (!header->spawned())
        free_frame_memory(header);
}

} // namespace eddy::detail
