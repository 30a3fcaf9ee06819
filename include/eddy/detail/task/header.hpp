#pragma once
//! The header of every eddy coroutine frame, and the frame allocator that places it.
//!
//! `task<T>`'s promise allocates its frame with this header in front of it:
//!
//!     [ task_header (80 bytes) ][ coroutine frame (resume/destroy pointers, promise, locals) ]
//!     ^ allocation start        ^ what operator new returns, == coroutine_handle::address()
//!
//! For a task that is only ever awaited, the header is inert. `spawn` turns the frame itself into
//! a runtime task: the header then carries the state word, the queue and owned-list links and the
//! join waker, so a spawned task costs one allocation. Because the header sits outside the
//! coroutine frame, it outlives the frame: cancelling a task destroys the frame at its suspension
//! point (running destructors) while the join handle can still read COMPLETE | CANCELLED.
//!
//! Fields other than `state` belong to whoever holds RUNNING (the poller), except: `queue_next`
//! belongs to the queue that holds the task's entry; the owned-list links belong to the owned
//! list's lock; `join_waker` follows the JOIN_WAKER protocol documented in state.hpp.

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

struct alignas(16) task_header : wake_target {
    task_state state;
    task_header* queue_next = nullptr;
    task_header* owned_prev = nullptr;
    task_header* owned_next = nullptr;
    scheduler* sched = nullptr;
    /// The innermost suspended coroutine of this task: what the next poll resumes.
    std::coroutine_handle<> resume_point{};
    wake_target* join_waker = nullptr;
    std::uint64_t id = 0;
    std::uint32_t frame_size = 0;
    bool spawned = false; ///< memory is owned by the reference count, not the task<T>
    bool bound = false;   ///< linked into its runtime's owned-task list
    bool frame_destroyed = false;

    explicit task_header(std::uint32_t size) noexcept : wake_target{nullptr}, frame_size(size) {}

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
};

static_assert(sizeof(task_header) % alignof(std::max_align_t) == 0,
              "the frame after the header must stay suitably aligned");

/// Typed operations of a spawned task, reached through the header's wake vtable.
struct task_vtable : wake_vtable {
    /// The exception the finished coroutine stored, if any. Only valid while the frame exists.
    std::exception_ptr (*exception)(task_header*) noexcept;
};

/// Allocates header + frame; returns the frame address.
inline void* allocate_frame(std::size_t frame_size) {
    void* mem = allocate_frame_memory(sizeof(task_header) + frame_size);
    // SAFETY: `mem` is fresh storage large enough for the header; the frame follows it.
    auto* header = ::new (mem) task_header(static_cast<std::uint32_t>(frame_size));
    return header->frame();
}

/// Frees the memory of a header and its (already destroyed) frame.
inline void free_frame_memory(task_header* header) noexcept {
    const std::size_t total = sizeof(task_header) + header->frame_size;
    header->~task_header();
    deallocate_frame_memory(static_cast<void*>(header), total);
}

/// The coroutine frame's `operator delete`: frees at once for a plain task; a spawned task's
/// memory stays until its last reference goes (see `release_task`).
inline void deallocate_frame(void* frame) noexcept {
    task_header* header = task_header::from_frame(frame);
    if (!header->spawned)
        free_frame_memory(header);
}

} // namespace eddy::detail
