#pragma once
//! `eddy::mutex<T>`: an async mutex that owns the value it protects (Tokio's `Mutex<T>`).
//!
//! ```cpp
//! eddy::mutex<std::vector<int>> m;
//! {
//!     auto guard = co_await m.lock();      // mutex_guard<std::vector<int>>
//!     guard->push_back(1);                 // *guard, guard-> reach the value
//! }                                        // unlocked here
//! ```
//!
//! - `lock()` suspends until the lock is the caller's; the task resumes on its runtime, woken by
//!   the thread that unlocked. Waiters are served in FIFO order: unlocking with waiters hands the
//!   lock directly to the longest waiting one, so no task can barge in between.
//! - A guard may be held across `co_await`s and moved between tasks and threads; the value is
//!   reached only through it. Unlike `std::mutex`, an eddy mutex is not tied to a thread.
//! - Cancel-safe: a `lock()` destroyed while waiting (its task aborted or shut down) leaves the
//!   queue without affecting the others; one destroyed after the lock was handed to it, but
//!   before it resumed, hands the lock on to the next waiter (or unlocks). Nothing is held by a
//!   cancelled waiter afterwards.
//! - `try_lock()` never suspends (nullopt while the lock is held or others wait for it);
//!   `blocking_lock()` blocks a thread that runs no runtime tasks (`std::logic_error` on one that
//!   does, where blocking would stall the runtime).
//! - `lock_owned(std::shared_ptr<mutex<T>>)` gives a guard that keeps the mutex alive.
//! - Costs: uncontended lock and unlock are one compare-and-swap each (the mutex is a one-permit
//!   `semaphore` internally); a contended unlock takes a spin lock and wakes one waiter.
//! - The mutex must outlive its waiters and (borrowed) guards.

#include <eddy/config.hpp>

#include <eddy/detail/sync/prim/batch_semaphore.hpp>

#include <coroutine>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace eddy {

template <class T>
class mutex;

/// Exclusive access to the value of a `mutex<T>`; unlocks on destruction. Move-only.
template <class T>
class [[nodiscard]] mutex_guard {
public:
    mutex_guard(mutex_guard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
    mutex_guard& operator=(mutex_guard&& other) noexcept {
        if (this != &other) {
            unlock();
            mutex_ = std::exchange(other.mutex_, nullptr);
        }
        return *this;
    }
    mutex_guard(const mutex_guard&) = delete;
    mutex_guard& operator=(const mutex_guard&) = delete;
    ~mutex_guard() { unlock(); }

    T& operator*() const noexcept { return mutex_->value_; }
    T* operator->() const noexcept { return std::addressof(mutex_->value_); }

    /// Unlocks now; the guard is empty afterwards and must not be dereferenced.
    void unlock() noexcept {
        if (auto* m = std::exchange(mutex_, nullptr))
            m->core_.release(1);
    }

    /// False once unlocked or moved from.
    [[nodiscard]] bool owns_lock() const noexcept { return mutex_ != nullptr; }

private:
    friend class mutex<T>;
    explicit mutex_guard(mutex<T>* m) noexcept : mutex_(m) {}

    mutex<T>* mutex_;
};

/// Like `mutex_guard`, holding a `std::shared_ptr` to the mutex, so it can outlive the caller.
template <class T>
class [[nodiscard]] owned_mutex_guard {
public:
    owned_mutex_guard(owned_mutex_guard&& other) noexcept = default;
    owned_mutex_guard& operator=(owned_mutex_guard&& other) noexcept {
        if (this != &other) {
            unlock();
            mutex_ = std::move(other.mutex_);
        }
        return *this;
    }
    owned_mutex_guard(const owned_mutex_guard&) = delete;
    owned_mutex_guard& operator=(const owned_mutex_guard&) = delete;
    ~owned_mutex_guard() { unlock(); }

    T& operator*() const noexcept { return mutex_->value_; }
    T* operator->() const noexcept { return std::addressof(mutex_->value_); }

    void unlock() noexcept {
        if (auto m = std::move(mutex_))
            m->core_.release(1);
    }

    [[nodiscard]] bool owns_lock() const noexcept { return mutex_ != nullptr; }
    /// The mutex this guard locks (null once unlocked).
    [[nodiscard]] const std::shared_ptr<mutex<T>>& mutex_ptr() const noexcept { return mutex_; }

private:
    friend class mutex<T>;
    explicit owned_mutex_guard(std::shared_ptr<mutex<T>> m) noexcept : mutex_(std::move(m)) {}

    std::shared_ptr<mutex<T>> mutex_;
};

template <class T>
class mutex {
    static_assert(!std::is_reference_v<T>, "mutex<T&> is not supported; use a pointer");

public:
    using value_type = T;

    mutex() requires std::is_default_constructible_v<T> : value_() {}
    explicit mutex(T value) : value_(std::move(value)) {}
    template <class... Args>
    explicit mutex(std::in_place_t, Args&&... args) : value_(std::forward<Args>(args)...) {}
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    /// `co_await m.lock()`: a `mutex_guard<T>`. Cancel-safe (see the header comment).
    class [[nodiscard]] lock_operation {
    public:
        bool await_ready() noexcept { return op_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return op_.await_suspend(h); }
        mutex_guard<T> await_resume() noexcept {
            const auto status = op_.await_resume();
            EDDY_ASSERT(status == detail::prim::acquire_status::acquired);
            (void)status;
            return mutex_guard<T>(mutex_);
        }

    private:
        friend class mutex;
        explicit lock_operation(mutex& m) noexcept : mutex_(&m), op_(m.core_, 1) {}
        mutex* mutex_;
        detail::prim::batch_semaphore::acquire_op op_;
    };

    /// `co_await mutex<T>::lock_owned(m)`: an `owned_mutex_guard<T>`. Cancel-safe.
    class [[nodiscard]] owned_lock_operation {
    public:
        bool await_ready() noexcept { return op_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return op_.await_suspend(h); }
        owned_mutex_guard<T> await_resume() noexcept {
            const auto status = op_.await_resume();
            EDDY_ASSERT(status == detail::prim::acquire_status::acquired);
            (void)status;
            return owned_mutex_guard<T>(mutex_);
        }

    private:
        friend class mutex;
        explicit owned_lock_operation(std::shared_ptr<mutex> m) noexcept
            : mutex_(std::move(m)), op_(mutex_->core_, 1) {}
        std::shared_ptr<mutex> mutex_;
        detail::prim::batch_semaphore::acquire_op op_;
    };

    /// Suspends until the lock is the caller's (FIFO among waiters).
    lock_operation lock() noexcept { return lock_operation(*this); }

    /// The lock if it is free and nobody waits for it; never suspends.
    std::optional<mutex_guard<T>> try_lock() noexcept {
        if (core_.try_acquire(1) == detail::prim::acquire_status::acquired)
            return mutex_guard<T>(this);
        return std::nullopt;
    }

    /// Blocks the calling thread until the lock is its own. Only for threads that run no
    /// runtime's tasks (plain threads, `spawn_blocking` closures); throws `std::logic_error`
    /// on a worker or inside `block_on`.
    mutex_guard<T> blocking_lock() {
        (void)core_.blocking_acquire(1, "eddy::mutex::blocking_lock");
        return mutex_guard<T>(this);
    }

    /// A guard that owns a reference to `m` (never null). Also `eddy::lock_owned(m)`.
    static owned_lock_operation lock_owned(std::shared_ptr<mutex> m) {
        if (!m)
            throw std::logic_error("eddy::mutex::lock_owned: null mutex");
        return owned_lock_operation(std::move(m));
    }

    /// `try_lock` for an owned guard.
    static std::optional<owned_mutex_guard<T>> try_lock_owned(std::shared_ptr<mutex> m) {
        if (!m)
            throw std::logic_error("eddy::mutex::try_lock_owned: null mutex");
        if (m->core_.try_acquire(1) == detail::prim::acquire_status::acquired)
            return owned_mutex_guard<T>(std::move(m));
        return std::nullopt;
    }

    /// The value without locking: for whoever owns the mutex exclusively (no guard exists and
    /// nobody else can reach it), as Tokio's `get_mut` takes `&mut self`.
    T& get_mut() noexcept { return value_; }

    /// Moves the value out of an unlocked mutex nobody else uses.
    T into_inner() && { return std::move(value_); }

private:
    friend class mutex_guard<T>;
    friend class owned_mutex_guard<T>;

    detail::prim::batch_semaphore core_{1};
    T value_;
};

/// `mutex<T>::lock_owned(m)`.
template <class T>
typename mutex<T>::owned_lock_operation lock_owned(std::shared_ptr<mutex<T>> m) {
    return mutex<T>::lock_owned(std::move(m));
}

/// `mutex<T>::try_lock_owned(m)`.
template <class T>
std::optional<owned_mutex_guard<T>> try_lock_owned(std::shared_ptr<mutex<T>> m) {
    return mutex<T>::try_lock_owned(std::move(m));
}

} // namespace eddy
