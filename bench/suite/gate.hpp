#pragma once
// A one-shot gate many tasks wait on, with intrusive waiters (no allocation per waiter), so that
// memory workloads measure tasks and not the signalling.

#include <eddy/waker.hpp>

#include <coroutine>
#include <mutex>

namespace suite {

class gate {
public:
    struct awaiter {
        gate& g;
        eddy::waker w;
        awaiter* next = nullptr;

        bool await_ready() const {
            std::lock_guard lock(g.mutex_);
            return g.open_;
        }
        bool await_suspend(std::coroutine_handle<> h) {
            w = eddy::current_waker(h);
            std::lock_guard lock(g.mutex_);
            if (g.open_)
                return false;
            next = g.head_;
            g.head_ = this;
            return true;
        }
        void await_resume() const noexcept {}
    };

    awaiter wait() { return awaiter{*this, {}}; }

    void open() {
        awaiter* list = nullptr;
        {
            std::lock_guard lock(mutex_);
            open_ = true;
            list = head_;
            head_ = nullptr;
        }
        while (list != nullptr) {
            awaiter* next = list->next;
            list->w.wake(); // may resume and destroy `list` on another thread: read next first
            list = next;
        }
    }

private:
    std::mutex mutex_;
    awaiter* head_ = nullptr;
    bool open_ = false;
};

} // namespace suite
