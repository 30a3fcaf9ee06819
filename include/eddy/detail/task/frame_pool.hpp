#pragma once
//! Per-thread recycling of coroutine frame memory, by size class.
//!
//! Every task frame (header included) is served from a size class; sizes up to 1 KiB come from
//! the calling thread's free list for that class before falling back to `operator new`. Classes
//! are 16 bytes apart and each asks `operator new` for 8 bytes less than a multiple of 16, which
//! is exactly what glibc's malloc serves without rounding (its chunk header is 8 bytes): a
//! 184-byte frame occupies a 192-byte chunk, not 208. A block freed on any thread joins that
//! thread's list (a block is plain memory of its class size, so it may move between threads). Each
//! list keeps at most `max_cached_bytes_per_class` bytes; beyond that blocks go back to `operator
//! delete`, so a burst of a million tasks does not pin its memory forever. A thread's cache is
//! released when the thread exits; frames freed on that thread afterwards (by later thread-local
//! or static destructors) go straight to `operator delete`. Only the owning thread touches its
//! lists: no synchronization.
//!
//! Define `EDDY_NO_FRAME_POOL` to allocate every frame with `operator new` (e.g. to let a leak
//! checker or allocator profiler see each frame).

#include <eddy/config.hpp>

#include <array>
#include <cstddef>
#include <new>

namespace eddy::detail {

class frame_pool {
public:
    static constexpr std::size_t granularity = 16;
    static constexpr std::size_t class_count = 64; // blocks of 8, 24, ..., 1016 bytes
    static constexpr std::size_t max_pooled_size = granularity * class_count - 8;
    static constexpr std::size_t max_cached_bytes_per_class = std::size_t{16} << 20;

    frame_pool() noexcept = default;
    frame_pool(const frame_pool&) = delete;
    frame_pool& operator=(const frame_pool&) = delete;
    ~frame_pool() {
        destroyed_on_this_thread() = true;
        for (auto& list : lists_) {
            while (list.head != nullptr) {
                free_block* b = list.head;
                list.head = b->next;
                ::operator delete(static_cast<void*>(b));
            }
        }
    }

    /// The block size of the class that serves `size` bytes.
    static std::size_t rounded(std::size_t size) noexcept { return block_size(index(size)); }

    void* allocate(std::size_t size) {
        if (size > max_pooled_size)
            return ::operator new(size);
        list_t& list = lists_[index(size)];
        if (free_block* b = list.head) {
            list.head = b->next;
            --list.count;
            b->~free_block();
            return static_cast<void*>(b);
        }
        return ::operator new(rounded(size));
    }

    void deallocate(void* p, std::size_t size) noexcept {
        if (size > max_pooled_size) {
            ::operator delete(p);
            return;
        }
        const std::size_t i = index(size);
        list_t& list = lists_[i];
        if ((list.count + 1) * block_size(i) > max_cached_bytes_per_class) {
            ::operator delete(p);
            return;
        }
        // SAFETY: the block is at least 64 bytes, dead, and suitably aligned for a pointer.
        list.head = ::new (p) free_block{list.head};
        ++list.count;
    }

    /// This thread's pool, or null once it was destroyed (thread exit: a frame freed by a
    /// thread-local or static destructor that runs later bypasses the pool).
    static frame_pool* local() noexcept {
        if (destroyed_on_this_thread())
            return nullptr;
        thread_local frame_pool pool;
        return &pool;
    }

private:
    /// Trivially destructible, so it stays readable after the pool's destructor ran.
    static bool& destroyed_on_this_thread() noexcept {
        thread_local bool destroyed = false;
        return destroyed;
    }

    struct free_block {
        free_block* next;
    };
    struct list_t {
        free_block* head = nullptr;
        std::size_t count = 0;
    };

    static std::size_t index(std::size_t size) noexcept {
        return (size + 7) / granularity; // the smallest class whose block holds `size`
    }
    static std::size_t block_size(std::size_t index) noexcept {
        return (index + 1) * granularity - 8;
    }

    std::array<list_t, class_count> lists_{};
};

inline void* allocate_frame_memory(std::size_t size) {
#if defined(EDDY_NO_FRAME_POOL)
    return ::operator new(size);
#else
    if (frame_pool* pool = frame_pool::local())
        return pool->allocate(size);
    return ::operator new(size);
#endif
}

inline void deallocate_frame_memory(void* p, [[maybe_unused]] std::size_t size) noexcept {
#if defined(EDDY_NO_FRAME_POOL)
    ::operator delete(p);
#else
    if (frame_pool* pool = frame_pool::local()) {
        pool->deallocate(p, size);
    } else {
        ::operator delete(p);
    }
#endif
}

} // namespace eddy::detail
