#pragma once
//! `eddy::join_set<T>`: a collection of spawned tasks, joined in the order they finish.
//!
//! ```cpp
//! eddy::join_set<int> set;
//! for (auto& url : urls) set.spawn(fetch(url));
//! while (auto r = co_await set.join_next()) {
//!     if (r->has_value()) use(r->take()); else log(r->id());
//! }
//! ```
//!
//! - `spawn(aw)` / `spawn_on(handle, aw)` start a task (as `eddy::spawn`) and return its id.
//! - `co_await join_next()` waits for the next member to finish and returns its `join_result`,
//!   or `std::nullopt` once the set is empty. Members come out in completion order. Cancel-safe:
//!   if the awaiting task is cancelled, a member that finished meanwhile stays in the set.
//! - `try_join_next()` returns a finished member without waiting, if there is one.
//! - `abort_all()` requests cancellation of every member (they still come out of join_next, as
//!   cancelled); `co_await shutdown()` aborts all and waits until every member has finished.
//! - Destroying the set aborts every member still running; outputs nobody joined are dropped (an
//!   exception nobody looked at goes to the runtime's unhandled-exception hook).
//!
//! A join_set belongs to one task at a time (it is not synchronized for concurrent callers); its
//! members run anywhere on their runtime.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/branch.hpp>
#include <eddy/detail/task/frame_pool.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/raw_task.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>
#include <variant>

namespace eddy {

/// How a member of a `join_set` ended: its value, an exception, or cancellation.
template <class T>
class join_result {
public:
    using value_type = detail::value_or_monostate_t<T>;

    [[nodiscard]] task_id id() const noexcept { return id_; }
    /// Finished normally: `take()` gives the value.
    [[nodiscard]] bool has_value() const noexcept { return outcome_.index() == 0; }
    /// Aborted or shut down before it finished.
    [[nodiscard]] bool is_cancelled() const noexcept { return outcome_.index() == 2; }
    /// The exception it finished with, if any.
    [[nodiscard]] std::exception_ptr exception() const noexcept {
        return outcome_.index() == 1 ? std::get<1>(outcome_) : nullptr;
    }

    /// The value; rethrows the task's exception, or `join_error{errc::cancelled}`.
    value_type take() {
        if (outcome_.index() == 1)
            std::rethrow_exception(std::get<1>(outcome_));
        if (outcome_.index() == 2)
            throw join_error(make_error_code(errc::cancelled));
        return std::move(std::get<0>(outcome_));
    }

private:
    template <class>
    friend class join_set;
    struct cancelled_t {};

    join_result(task_id id, std::variant<value_type, std::exception_ptr, cancelled_t> o)
        : id_(id), outcome_(std::move(o)) {}

    task_id id_;
    std::variant<value_type, std::exception_ptr, cancelled_t> outcome_;
};

template <class T = void>
class join_set {
    struct live_tag;
    struct shared;

    /// One member: its join handle, and the wake target its task's completion wakes.
    struct entry final : detail::wake_target, detail::list_node<entry, live_tag> {
        entry(shared* s, join_handle<T> h) noexcept
            : wake_target{vtable()}, set(s), handle(std::move(h)) {
            s->retain();
        }
        ~entry() { set->release(); }
        // From the per-thread frame pool, like the tasks themselves.
        static void* operator new(std::size_t size) { return detail::allocate_frame_memory(size); }
        static void operator delete(void* p, std::size_t size) noexcept {
            detail::deallocate_frame_memory(p, size);
        }
        entry(const entry&) = delete;
        entry& operator=(const entry&) = delete;
        shared* set;
        join_handle<T> handle;
        entry* next_done = nullptr;
        detail::atomic<int> refs{2}; // the set's, and the task's join waker

        void release() noexcept {
            // ORDERING: acq_rel so the freeing thread sees the other owner's last use.
            if (refs.fetch_sub(1, detail::memory_order_acq_rel) == 1)
                delete this;
        }

        static entry& self(detail::wake_target* w) noexcept { return *static_cast<entry*>(w); }
        // The task finished: move to the done list and wake join_next. Consumes the reference.
        static void wake(detail::wake_target* w) noexcept {
            entry& e = self(w);
            e.set->finished(e);
            e.release();
        }
        static void wake_by_ref(detail::wake_target* w) noexcept { self(w).set->finished(self(w)); }
        static void clone(detail::wake_target* w) noexcept {
            self(w).refs.fetch_add(1, detail::memory_order_relaxed);
        }
        static void drop(detail::wake_target* w) noexcept { self(w).release(); }
        static const detail::wake_vtable* vtable() noexcept {
            static constexpr detail::wake_vtable table{&wake, &wake_by_ref, &clone, &drop};
            return &table;
        }
    };

    /// What completions (any thread) and the owner share. Reference counted: the set and every
    /// entry hold one, so a completion racing the set's destruction touches live memory.
    struct shared {
        detail::atomic<std::size_t> refs{1};
        detail::spin_lock lock;
        detail::intrusive_list<entry, live_tag> live;
        entry* done_head = nullptr;
        entry* done_tail = nullptr;
        waker waiter; ///< join_next's, while it waits
        bool closed = false;

        void retain() noexcept { refs.fetch_add(1, detail::memory_order_relaxed); }
        void release() noexcept {
            // ORDERING: acq_rel so the freeing thread sees every other owner's last use.
            if (refs.fetch_sub(1, detail::memory_order_acq_rel) == 1)
                delete this;
        }

        void finished(entry& e) noexcept {
            waker w;
            {
                std::lock_guard g(lock);
                if (closed || !e.linked())
                    return;
                live.remove(&e);
                e.next_done = nullptr;
                if (done_tail != nullptr) {
                    done_tail->next_done = &e;
                } else {
                    done_head = &e;
                }
                done_tail = &e;
                w = std::move(waiter);
            }
            w.wake();
        }

        entry* pop_done() noexcept {
            entry* e = done_head;
            if (e != nullptr) {
                done_head = e->next_done;
                if (done_head == nullptr)
                    done_tail = nullptr;
            }
            return e;
        }
    };

public:
    join_set() : shared_(new shared) {}
    join_set(join_set&& other) noexcept
        : shared_(std::exchange(other.shared_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    join_set& operator=(join_set&& other) noexcept {
        if (this != &other) {
            destroy();
            shared_ = std::exchange(other.shared_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    join_set(const join_set&) = delete;
    join_set& operator=(const join_set&) = delete;
    ~join_set() { destroy(); }

    /// Spawns `aw` on the current runtime as a member. Returns its id.
    template <awaitable A>
    task_id spawn(A&& aw) {
        return add(eddy::spawn(std::forward<A>(aw)));
    }

    /// Spawns the awaitable `f()` returns (see `eddy::spawn`).
    template <class F>
    requires detail::awaitable_factory<F> task_id spawn(F&& f) {
        return add(eddy::spawn(std::forward<F>(f)));
    }

    /// Spawns `aw` on the runtime of `h` as a member.
    template <awaitable A>
    task_id spawn_on(const runtime::handle& h, A&& aw) {
        return add(h.spawn(std::forward<A>(aw)));
    }

    /// Members not yet returned by join_next (running or finished).
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// Requests cancellation of every member still running.
    void abort_all() noexcept {
        std::lock_guard g(shared_->lock);
        for (entry* e = shared_->live.front(); e != nullptr;
             e = detail::intrusive_list<entry, live_tag>::next(e)) {
            e->handle.abort();
        }
    }

    /// A finished member, without waiting.
    std::optional<join_result<T>> try_join_next() {
        entry* e = nullptr;
        {
            std::lock_guard g(shared_->lock);
            e = shared_->pop_done();
        }
        if (e == nullptr)
            return std::nullopt;
        return take(e);
    }

    class [[nodiscard]] join_next_operation {
    public:
        explicit join_next_operation(join_set& s) noexcept : set_(s) {}
        join_next_operation(const join_next_operation&) = delete;
        join_next_operation& operator=(const join_next_operation&) = delete;
        ~join_next_operation() {
            if (registered_) {
                std::lock_guard g(set_.shared_->lock);
                set_.shared_->waiter.reset();
            }
        }

        bool await_ready() const noexcept {
            if (set_.size_ == 0)
                return true;
            std::lock_guard g(set_.shared_->lock);
            return set_.shared_->done_head != nullptr;
        }

        bool await_suspend(std::coroutine_handle<> h) {
            waker w = current_waker(h);
            std::lock_guard g(set_.shared_->lock);
            if (set_.shared_->done_head != nullptr)
                return false; // finished meanwhile
            set_.shared_->waiter = std::move(w);
            registered_ = true;
            return true;
        }

        std::optional<join_result<T>> await_resume() {
            registered_ = false; // the waker was taken by the completion that woke us
            return set_.try_join_next();
        }

    private:
        join_set& set_;
        bool registered_ = false;
    };

    /// Waits for the next member to finish; `std::nullopt` when the set is empty.
    join_next_operation join_next() noexcept { return join_next_operation(*this); }

    /// Aborts every member and waits until all have finished (their outputs are dropped).
    task<> shutdown() {
        abort_all();
        for (;;) {
            // (Not `while (co_await ...)`: GCC 12 miscompiles a co_await in a loop condition.)
            std::optional<join_result<T>> r = co_await join_next();
            if (!r)
                break;
        }
    }

private:
    task_id add(join_handle<T> h) {
        const task_id id = h.id();
        detail::task_header* t = detail::join_access<T>::header(h);
        auto* e = new entry(shared_, std::move(h));
        ++size_;
        {
            std::lock_guard g(shared_->lock);
            shared_->live.push_back(e);
        }
        // SAFETY: JOIN_WAKER is clear (nobody awaits the handle), so the slot is ours until
        // set_join_waker publishes it; the task then holds the entry's second reference.
        t->join_waker = e;
        if (!t->state.set_join_waker()) {
            t->join_waker = nullptr;
            // Already finished: it goes straight to the done list.
            shared_->finished(*e);
            e->release();
        }
        return id;
    }

    join_result<T> take(entry* e) {
        --size_;
        join_handle<T>& h = e->handle;
        const task_id id = h.id();
        detail::task_header* t = detail::join_access<T>::header(h);
        using outcome = std::variant<typename join_result<T>::value_type, std::exception_ptr,
                                     typename join_result<T>::cancelled_t>;
        std::optional<join_result<T>> r;
        // ORDERING: the completion's wake published COMPLETE and the output before we saw the
        // entry in the done list (taken under the lock).
        if (t->frame_destroyed()) {
            detail::join_access<T>::mark_taken(h);
            r.emplace(join_result<T>(id, outcome(std::in_place_index<2>)));
        } else if (std::exception_ptr ex =
                       static_cast<const detail::task_vtable*>(t->vtable)->exception(t)) {
            detail::join_access<T>::mark_taken(h);
            r.emplace(join_result<T>(id, outcome(std::in_place_index<1>, std::move(ex))));
        } else if constexpr (std::is_void_v<T>) {
            detail::join_access<T>::take(h);
            r.emplace(join_result<T>(id, outcome(std::in_place_index<0>)));
        } else {
            r.emplace(join_result<T>(
                id, outcome(std::in_place_index<0>, detail::join_access<T>::take(h))));
        }
        e->release();
        return std::move(*r);
    }

    void destroy() noexcept {
        if (shared_ == nullptr)
            return;
        entry* done = nullptr;
        detail::intrusive_list<entry, live_tag> live;
        {
            std::lock_guard g(shared_->lock);
            shared_->closed = true;
            live.splice_back(shared_->live);
            done = std::exchange(shared_->done_head, nullptr);
            shared_->done_tail = nullptr;
        }
        while (entry* e = live.pop_front()) {
            e->handle.abort();
            // Detaching withdraws the task's join waker (dropping its reference) unless the task
            // finished meanwhile, in which case its completion releases it.
            e->handle.detach();
            e->release();
        }
        while (done != nullptr) {
            entry* e = std::exchange(done, done->next_done);
            e->handle.detach();
            e->release();
        }
        size_ = 0;
        std::exchange(shared_, nullptr)->release();
    }

    shared* shared_; // one reference
    std::size_t size_ = 0;
};

} // namespace eddy
