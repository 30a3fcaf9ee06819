#pragma once
//! `eddy::rw_lock<T>`: an async reader-writer lock that owns the value it protects (Tokio's
//! `RwLock<T>`).
//!
//! ```cpp
//! eddy::rw_lock<config> cfg;
//! { auto r = co_await cfg.read();  use(r->timeout); }    // shared: many readers at once
//! { auto w = co_await cfg.write(); w->timeout = 5s; }    // exclusive
//! ```
//!
//! - Fair, in FIFO order: a writer that waits blocks readers that come after it, so a stream of
//!   readers cannot starve writers, and the readers queued behind a writer get in together once
//!   it leaves. Built on the semaphore: a reader takes 1 of `max_readers` permits, a writer all.
//! - `max_readers` (default `default_max_readers`) caps the concurrent readers; a reader beyond
//!   it waits.
//! - `read()`/`write()` suspend until the access is the caller's; the task resumes on its
//!   runtime, woken by the thread that released the lock. `try_read`/`try_write` never suspend
//!   (nullopt when they would). `blocking_read`/`blocking_write` block a thread that runs no
//!   runtime tasks (`std::logic_error` on one that does).
//! - Cancel-safe: a `read()`/`write()` destroyed while waiting leaves the queue (a writer that
//!   already held part of the reader slots gives them back); one destroyed after it was granted,
//!   but before it resumed, releases its access, which passes to the next waiters.
//! - `rw_lock_write_guard::downgrade` turns write access into read access without letting a
//!   writer in between.
//! - The lock must outlive its waiters and guards. Every member may be called from any thread.

#include <eddy/config.hpp>

#include <eddy/detail/sync/prim/batch_semaphore.hpp>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace eddy {

template <class T>
class rw_lock;

/// Shared (read) access to the value of an `rw_lock<T>`; released on destruction. Move-only.
template <class T>
class [[nodiscard]] rw_lock_read_guard {
public:
    rw_lock_read_guard(rw_lock_read_guard&& other) noexcept
        : lock_(std::exchange(other.lock_, nullptr)) {}
    rw_lock_read_guard& operator=(rw_lock_read_guard&& other) noexcept {
        if (this != &other) {
            unlock();
            lock_ = std::exchange(other.lock_, nullptr);
        }
        return *this;
    }
    rw_lock_read_guard(const rw_lock_read_guard&) = delete;
    rw_lock_read_guard& operator=(const rw_lock_read_guard&) = delete;
    ~rw_lock_read_guard() { unlock(); }

    const T& operator*() const noexcept { return lock_->value_; }
    const T* operator->() const noexcept { return std::addressof(lock_->value_); }

    /// Releases the read access now; the guard must not be dereferenced afterwards.
    void unlock() noexcept {
        if (auto* l = std::exchange(lock_, nullptr))
            l->core_.release(1);
    }
    [[nodiscard]] bool owns_lock() const noexcept { return lock_ != nullptr; }

private:
    friend class rw_lock<T>;
    template <class>
    friend class rw_lock_write_guard;
    explicit rw_lock_read_guard(rw_lock<T>* l) noexcept : lock_(l) {}

    rw_lock<T>* lock_;
};

/// Exclusive (write) access to the value of an `rw_lock<T>`; released on destruction.
template <class T>
class [[nodiscard]] rw_lock_write_guard {
public:
    rw_lock_write_guard(rw_lock_write_guard&& other) noexcept
        : lock_(std::exchange(other.lock_, nullptr)) {}
    rw_lock_write_guard& operator=(rw_lock_write_guard&& other) noexcept {
        if (this != &other) {
            unlock();
            lock_ = std::exchange(other.lock_, nullptr);
        }
        return *this;
    }
    rw_lock_write_guard(const rw_lock_write_guard&) = delete;
    rw_lock_write_guard& operator=(const rw_lock_write_guard&) = delete;
    ~rw_lock_write_guard() { unlock(); }

    T& operator*() const noexcept { return lock_->value_; }
    T* operator->() const noexcept { return std::addressof(lock_->value_); }

    void unlock() noexcept {
        if (auto* l = std::exchange(lock_, nullptr))
            l->core_.release(l->max_readers_);
    }
    [[nodiscard]] bool owns_lock() const noexcept { return lock_ != nullptr; }

    /// Turns write access into read access atomically: no writer can get in between, and the
    /// readers queued at the front of the line get in alongside. The guard must own the lock.
    static rw_lock_read_guard<T> downgrade(rw_lock_write_guard&& g) noexcept {
        EDDY_ASSERT(g.lock_ != nullptr);
        rw_lock<T>* l = std::exchange(g.lock_, nullptr);
        l->core_.release(l->max_readers_ - 1);
        return rw_lock_read_guard<T>(l);
    }

private:
    friend class rw_lock<T>;
    explicit rw_lock_write_guard(rw_lock<T>* l) noexcept : lock_(l) {}

    rw_lock<T>* lock_;
};

template <class T>
class rw_lock {
    static_assert(!std::is_reference_v<T>, "rw_lock<T&> is not supported; use a pointer");

public:
    using value_type = T;

    /// Readers allowed at once unless the constructor says otherwise (Tokio's figure).
    static constexpr std::size_t default_max_readers = (std::size_t{1} << 29) - 1;

    rw_lock() requires std::is_default_constructible_v<T> : rw_lock(T()) {}
    explicit rw_lock(T value) : rw_lock(std::move(value), default_max_readers) {}
    /// Allows at most `max_readers` (>= 1, <= semaphore::max_permits) readers at once; throws
    /// `std::logic_error` otherwise.
    rw_lock(T value, std::size_t max_readers)
        : max_readers_(checked(max_readers)), core_(max_readers), value_(std::move(value)) {}
    rw_lock(const rw_lock&) = delete;
    rw_lock& operator=(const rw_lock&) = delete;

    /// `co_await l.read()` / `co_await l.write()`: a guard. Cancel-safe.
    template <class Guard>
    class [[nodiscard]] access_operation {
    public:
        bool await_ready() noexcept { return op_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return op_.await_suspend(h); }
        Guard await_resume() noexcept {
            const auto status = op_.await_resume();
            EDDY_ASSERT(status == detail::prim::acquire_status::acquired);
            (void)status;
            return Guard(lock_);
        }

    private:
        friend class rw_lock;
        access_operation(rw_lock& l, std::size_t permits) noexcept
            : lock_(&l), op_(l.core_, permits) {}
        rw_lock* lock_;
        detail::prim::batch_semaphore::acquire_op op_;
    };
    using read_operation = access_operation<rw_lock_read_guard<T>>;
    using write_operation = access_operation<rw_lock_write_guard<T>>;

    /// Shared access; waits behind any writer queued earlier.
    read_operation read() noexcept { return read_operation(*this, 1); }
    /// Exclusive access; waits for the current readers (and everyone queued earlier) to leave.
    write_operation write() noexcept { return write_operation(*this, max_readers_); }

    std::optional<rw_lock_read_guard<T>> try_read() noexcept {
        if (core_.try_acquire(1) == detail::prim::acquire_status::acquired)
            return rw_lock_read_guard<T>(this);
        return std::nullopt;
    }
    std::optional<rw_lock_write_guard<T>> try_write() noexcept {
        if (core_.try_acquire(max_readers_) == detail::prim::acquire_status::acquired)
            return rw_lock_write_guard<T>(this);
        return std::nullopt;
    }

    /// For threads that run no runtime's tasks; `std::logic_error` elsewhere.
    rw_lock_read_guard<T> blocking_read() {
        (void)core_.blocking_acquire(1, "eddy::rw_lock::blocking_read");
        return rw_lock_read_guard<T>(this);
    }
    rw_lock_write_guard<T> blocking_write() {
        (void)core_.blocking_acquire(max_readers_, "eddy::rw_lock::blocking_write");
        return rw_lock_write_guard<T>(this);
    }

    [[nodiscard]] std::size_t max_readers() const noexcept { return max_readers_; }

    /// The value without locking, for an exclusive owner of the lock (no guards, no waiters).
    T& get_mut() noexcept { return value_; }
    T into_inner() && { return std::move(value_); }

private:
    friend class rw_lock_read_guard<T>;
    friend class rw_lock_write_guard<T>;

    static std::size_t checked(std::size_t n) {
        if (n == 0 || n > detail::prim::batch_semaphore::max_permits)
            throw std::logic_error("eddy::rw_lock: max_readers must be in [1, max_permits]");
        return n;
    }

    const std::size_t max_readers_;
    detail::prim::batch_semaphore core_;
    T value_;
};

} // namespace eddy
