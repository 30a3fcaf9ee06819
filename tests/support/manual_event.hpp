#pragma once
// A test-only event: tasks await it; set() from any thread wakes them all. Awaiters that are
// destroyed while waiting (a cancelled task) withdraw their waker, as runtime awaitables must.

#include <eddy/waker.hpp>

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <list>
#include <mutex>
#include <utility>

namespace eddy::test {

class manual_event {
public:
    class awaiter {
    public:
        explicit awaiter(manual_event& ev) : ev_(ev) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            std::lock_guard lock(ev_.mutex_);
            if (registered_)
                ev_.waiters_.erase(it_);
        }

        bool await_ready() const {
            std::lock_guard lock(ev_.mutex_);
            return ev_.set_;
        }
        bool await_suspend(std::coroutine_handle<> h) {
            waker w = current_waker(h);
            std::lock_guard lock(ev_.mutex_);
            if (ev_.set_)
                return false;
            ev_.waiters_.push_back(entry{std::move(w), this});
            it_ = std::prev(ev_.waiters_.end());
            registered_ = true;
            return true;
        }
        void await_resume() const noexcept {}

    private:
        friend class manual_event;
        struct entry {
            waker w;
            awaiter* self;
        };
        manual_event& ev_;
        std::list<entry>::iterator it_;
        bool registered_ = false;
    };

    awaiter wait() { return awaiter(*this); }

    void set() {
        std::list<awaiter::entry> woken;
        {
            std::lock_guard lock(mutex_);
            set_ = true;
            for (auto& e : waiters_)
                e.self->registered_ = false;
            woken.swap(waiters_);
        }
        for (auto& e : woken)
            e.w.wake();
    }

    [[nodiscard]] std::size_t waiting() const {
        std::lock_guard lock(mutex_);
        return waiters_.size();
    }

private:
    mutable std::mutex mutex_;
    std::list<awaiter::entry> waiters_;
    bool set_ = false;
};

/// Counts destructions (of the last moved-to copy), to prove frames are destroyed. `Counter` is
/// `int`, or `std::atomic<int>` when frames may be destroyed on other threads.
template <class Counter>
struct basic_drop_counter {
    Counter* count;
    explicit basic_drop_counter(Counter* c) : count(c) {}
    basic_drop_counter(basic_drop_counter&& o) noexcept : count(std::exchange(o.count, nullptr)) {}
    basic_drop_counter(const basic_drop_counter&) = delete;
    ~basic_drop_counter() {
        if (count != nullptr)
            ++*count;
    }
};
using drop_counter = basic_drop_counter<int>;
using atomic_drop_counter = basic_drop_counter<std::atomic<int>>;

} // namespace eddy::test
