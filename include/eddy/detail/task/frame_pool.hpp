#pragma once
//! Per-thread recycling of coroutine frame memory, by size class.
//!
//! Every task frame (header included) is rounded up to a multiple of 64 bytes; sizes up to 1 KiB
//! are served from the calling thread's free list for that class before falling back to
//! `operator new`. A block freed on any thread joins that thread's list (a block is plain memory
//! of its class size, so it may move between threads). Each list keeps at most
//! `max_cached_bytes_per_class` bytes; beyond that blocks go back to `operator delete`, so a burst
//! of a million tasks does not pin its memory forever. A thread's cache is released when the
//! thread exits. Only the owning thread touches its lists: no synchronization.
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
    static constexpr std::size_t granularity = 64;
    static constexpr std::size_t class_count = 16; // 64 .. 1024 bytes
    static constexpr std::size_t max_pooled_size = granularity * class_count;
    static constexpr std::size_t max_cached_bytes_per_class = std::size_t{16} << 20;

    frame_pool() noexcept = default;
    frame_pool(const frame_pool&) = delete;
    frame_pool& operator=(const frame_pool&) = delete;
    ~frame_pool() {
        for (auto& list : lists_) {
            while (list.head != nullptr) {
                free_block* b = list.head;
                list.head = b->next;
                ::operator delete(static_cast<void*>(b));
            }
        }
    }

    static std::size_t rounded(std::size_t size) noexcept {
        return (size + granularity - 1) / granularity * granularity;
    }

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
        if ((list.count + 1) * (i + 1) * granularity > max_cached_bytes_per_class) {
            ::operator delete(p);
            return;
        }
        // SAFETY: the block is at least 64 bytes, dead, and suitably aligned for a pointer.
        list.head = ::new (p) free_block{list.head};
        ++list.count;
    }

    static frame_pool& local() noexcept {
        thread_local frame_pool pool;
        return pool;
    }

private:
    struct free_block {
        free_block* next;
    };
    struct list_t {
        free_block* head = nullptr;
        std::size_t count = 0;
    };

    static std::size_t index(std::size_t size) noexcept { return (size - 1) / granularity; }

    std::array<list_t, class_count> lists_{};
};

inline void* allocate_frame_memory(std::size_t size) {
#if defined(EDDY_NO_FRAME_POOL)
    return ::operator new(size);
#else
    return frame_pool::local().allocate(size);
#endif
}

inline void deallocate_frame_memory(void* p, [[maybe_unused]] std::size_t size) noexcept {
#if defined(EDDY_NO_FRAME_POOL)
    ::operator delete(p);
#else
    frame_pool::local().deallocate(p, size);
#endif
}

} // namespace eddy::detail
