#pragma once
//! `thread_waker`: a wake target that unparks a plain thread (one that runs no tasks). This is how
//! `block_on` waits for its root task, and how blocking bridges (`blocking_send`, ...) wait from
//! threads outside the runtime: hand out wakers made from it, then park on `park` until the
//! condition holds.

#include <eddy/config.hpp>

#include <eddy/waker.hpp>

#include <eddy/detail/scheduler/park.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/task/wake_target.hpp>

#include <cstdint>

namespace eddy::detail {

/// Reference counted: the waiting thread holds one reference, every waker made from it another.
class thread_waker final : public wake_target {
public:
    thread_waker() noexcept : wake_target{vtable()} {}

    parker park;

    void release() noexcept {
        // ORDERING: acq_rel so the deleting side sees the other side's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1)
            delete this;
    }
    void retain() noexcept { refs_.fetch_add(1, memory_order_relaxed); }

private:
    static thread_waker* self(wake_target* w) noexcept { return static_cast<thread_waker*>(w); }
    static void wake(wake_target* w) noexcept {
        self(w)->park.unpark();
        self(w)->release();
    }
    static void wake_by_ref(wake_target* w) noexcept { self(w)->park.unpark(); }
    static void clone(wake_target* w) noexcept { self(w)->retain(); }
    static void drop(wake_target* w) noexcept { self(w)->release(); }
    static const wake_vtable* vtable() noexcept {
        static constexpr wake_vtable table{&wake, &wake_by_ref, &clone, &drop};
        return &table;
    }

    atomic<std::uint32_t> refs_{1};
};

/// A waker for `tw` (takes one more reference on it).
inline waker make_waker(thread_waker* tw) noexcept {
    tw->retain();
    return waker(tw);
}

} // namespace eddy::detail
