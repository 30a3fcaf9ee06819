#pragma once
//! `eddy::semaphore`: an async counting semaphore, fair and closable (Tokio's `Semaphore`).
//!
//! ```cpp
//! eddy::semaphore sem(3);                       // at most 3 holders at a time
//! auto permit = co_await sem.acquire();         // result<semaphore_permit>
//! if (!permit) { /* errc::closed */ }
//! // ... the permit returns itself when it goes out of scope
//! ```
//!
//! - Fairness: waiters are served in FIFO order. A waiter asking for more permits than are free
//!   takes what is free and waits at the head for the rest, so a large `acquire_many` is not
//!   starved by a stream of small ones (and blocks the small ones queued behind it).
//! - `acquire`/`acquire_many` suspend until the permits are the caller's, or return
//!   `errc::closed` once `close()` was called (queued waiters resume with it too). The task
//!   resumes on its runtime, woken by the thread that returned the permits.
//! - `try_acquire`/`try_acquire_many` never suspend: `errc::empty` means not enough permits are
//!   free (or others are queued ahead: a try does not barge), `errc::closed` that it was closed.
//! - Cancel-safe: an acquire destroyed while waiting (its task aborted or shut down) leaves the
//!   queue and returns the permits it had been given so far; one destroyed after its permits were
//!   handed over, but before it resumed, returns all of them. The permits go to the next waiter.
//! - Owned permits: `acquire_owned(std::shared_ptr<semaphore>)` and friends give a permit that
//!   keeps the semaphore alive, so it can move into a spawned task. Note that a coroutine's
//!   parameters live as long as its frame, which a finished task's `join_handle` keeps until it
//!   is dropped: a task that receives a permit as a parameter should `release()` it when done.
//! - Every member may be called from any thread. The semaphore must outlive its waiters and its
//!   (borrowed) permits.
//! - Costs: uncontended acquire and release are one compare-and-swap each; a contended release
//!   takes a spin lock, O(1) per waiter it wakes.

#include <eddy/config.hpp>

#include <eddy/result.hpp>

#include <eddy/detail/sync/prim/batch_semaphore.hpp>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

namespace eddy {

class semaphore;

/// Permits borrowed from a `semaphore`; returned when the permit is destroyed. Move-only.
class [[nodiscard]] semaphore_permit {
public:
    semaphore_permit() noexcept = default;
    semaphore_permit(semaphore_permit&& other) noexcept
        : sem_(std::exchange(other.sem_, nullptr)), permits_(std::exchange(other.permits_, 0)) {}
    semaphore_permit& operator=(semaphore_permit&& other) noexcept {
        if (this != &other) {
            release();
            sem_ = std::exchange(other.sem_, nullptr);
            permits_ = std::exchange(other.permits_, 0);
        }
        return *this;
    }
    semaphore_permit(const semaphore_permit&) = delete;
    semaphore_permit& operator=(const semaphore_permit&) = delete;
    ~semaphore_permit() { release(); }

    /// How many permits this holds.
    [[nodiscard]] std::size_t num_permits() const noexcept { return permits_; }

    /// Drops the permits without returning them: the semaphore has that many fewer for good.
    void forget() noexcept { permits_ = 0; }

    /// Adds `other`'s permits to this one. Throws `std::logic_error` if they come from different
    /// semaphores.
    void merge(semaphore_permit&& other);

    /// Moves `n` of the permits into a new permit; nullopt (and nothing changes) if this holds
    /// fewer than `n`.
    std::optional<semaphore_permit> split(std::size_t n) noexcept {
        if (n > permits_)
            return std::nullopt;
        permits_ -= n;
        return semaphore_permit(sem_, n);
    }

    /// Returns the permits now (the destructor then does nothing).
    void release() noexcept;

private:
    friend class semaphore;
    semaphore_permit(semaphore* s, std::size_t n) noexcept : sem_(s), permits_(n) {}

    semaphore* sem_ = nullptr;
    std::size_t permits_ = 0;
};

/// Permits of a semaphore owned through a `std::shared_ptr`; keeps the semaphore alive.
class [[nodiscard]] owned_semaphore_permit {
public:
    owned_semaphore_permit() noexcept = default;
    owned_semaphore_permit(owned_semaphore_permit&& other) noexcept
        : sem_(std::move(other.sem_)), permits_(std::exchange(other.permits_, 0)) {}
    owned_semaphore_permit& operator=(owned_semaphore_permit&& other) noexcept {
        if (this != &other) {
            release();
            sem_ = std::move(other.sem_);
            permits_ = std::exchange(other.permits_, 0);
        }
        return *this;
    }
    owned_semaphore_permit(const owned_semaphore_permit&) = delete;
    owned_semaphore_permit& operator=(const owned_semaphore_permit&) = delete;
    ~owned_semaphore_permit() { release(); }

    [[nodiscard]] std::size_t num_permits() const noexcept { return permits_; }
    /// The semaphore the permits belong to.
    [[nodiscard]] const std::shared_ptr<semaphore>& semaphore_ptr() const noexcept { return sem_; }
    /// Drops the permits without returning them.
    void forget() noexcept { permits_ = 0; }
    /// Returns the permits now.
    void release() noexcept;

private:
    friend class semaphore;
    friend result<owned_semaphore_permit> try_acquire_many_owned(std::shared_ptr<semaphore> s,
                                                                 std::size_t n);
    owned_semaphore_permit(std::shared_ptr<semaphore> s, std::size_t n) noexcept
        : sem_(std::move(s)), permits_(n) {}

    std::shared_ptr<semaphore> sem_;
    std::size_t permits_ = 0;
};

class semaphore {
public:
    /// The most permits a semaphore can hold, and the most one acquire can ask for.
    static constexpr std::size_t max_permits = detail::prim::batch_semaphore::max_permits;

    /// Throws `std::logic_error` if `permits > max_permits`.
    explicit semaphore(std::size_t permits) : core_(permits) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    /// `co_await`: `result<semaphore_permit>`, see the header comment. Cancel-safe.
    class [[nodiscard]] acquire_operation {
    public:
        bool await_ready() noexcept { return op_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return op_.await_suspend(h); }
        result<semaphore_permit> await_resume() noexcept {
            if (op_.await_resume() == detail::prim::acquire_status::closed)
                return errc::closed;
            return semaphore_permit(sem_, op_.permits());
        }

    private:
        friend class semaphore;
        acquire_operation(semaphore& s, std::size_t n) noexcept : sem_(&s), op_(s.core_, n) {}
        semaphore* sem_;
        detail::prim::batch_semaphore::acquire_op op_;
    };

    /// `co_await`: `result<owned_semaphore_permit>`. Cancel-safe, like `acquire_operation`.
    class [[nodiscard]] acquire_owned_operation {
    public:
        bool await_ready() noexcept { return op_.await_ready(); }
        bool await_suspend(std::coroutine_handle<> h) { return op_.await_suspend(h); }
        result<owned_semaphore_permit> await_resume() noexcept {
            if (op_.await_resume() == detail::prim::acquire_status::closed)
                return errc::closed;
            return owned_semaphore_permit(sem_, op_.permits());
        }

    private:
        friend class semaphore;
        friend acquire_owned_operation acquire_many_owned(std::shared_ptr<semaphore> s,
                                                          std::size_t n);
        acquire_owned_operation(std::shared_ptr<semaphore> s, std::size_t n) noexcept
            : sem_(std::move(s)), op_(sem_->core_, n) {}
        std::shared_ptr<semaphore> sem_;
        detail::prim::batch_semaphore::acquire_op op_;
    };

    /// One permit. Suspends while none is free (or others wait ahead).
    acquire_operation acquire() noexcept { return {*this, 1}; }

    /// `n` permits at once (all or nothing from the caller's view). Throws `std::logic_error`
    /// if `n > max_permits`.
    acquire_operation acquire_many(std::size_t n) { return {*this, checked(n)}; }

    /// Never suspends: a permit, `errc::empty` (none free, or others queued) or `errc::closed`.
    result<semaphore_permit> try_acquire() noexcept { return try_acquire_impl(1); }

    /// Never suspends; see `try_acquire`.
    result<semaphore_permit> try_acquire_many(std::size_t n) noexcept {
        return try_acquire_impl(n);
    }

    /// Blocks the calling thread, which must not run a runtime's tasks (else `std::logic_error`).
    result<semaphore_permit> blocking_acquire() { return blocking_acquire_many(1); }
    result<semaphore_permit> blocking_acquire_many(std::size_t n) {
        if (core_.blocking_acquire(checked(n), "eddy::semaphore::blocking_acquire") ==
            detail::prim::acquire_status::closed) {
            return errc::closed;
        }
        return semaphore_permit(this, n);
    }

    friend acquire_owned_operation acquire_many_owned(std::shared_ptr<semaphore> s, std::size_t n);
    friend result<owned_semaphore_permit> try_acquire_many_owned(std::shared_ptr<semaphore> s,
                                                                 std::size_t n);

    /// Adds `n` new permits (they go to waiters first). Throws `std::logic_error` if the free
    /// count would exceed `max_permits`.
    void add_permits(std::size_t n) { core_.add_permits(n); }

    /// Removes up to `n` free permits for good; returns how many it removed. Never waits.
    std::size_t forget_permits(std::size_t n) noexcept { return core_.forget(n); }

    /// Free permits now (a snapshot; 0 while anyone waits).
    [[nodiscard]] std::size_t available_permits() const noexcept { return core_.available(); }

    /// Wakes every waiter with `errc::closed` and fails later acquires. Permits held elsewhere
    /// can still be returned. Idempotent.
    void close() noexcept { core_.close(); }
    [[nodiscard]] bool is_closed() const noexcept { return core_.is_closed(); }

private:
    friend class semaphore_permit;
    friend class owned_semaphore_permit;

    static std::size_t checked(std::size_t n) {
        if (n > max_permits)
            throw std::logic_error("eddy::semaphore: acquire of more than max_permits permits");
        return n;
    }

    result<semaphore_permit> try_acquire_impl(std::size_t n) noexcept {
        switch (core_.try_acquire(n)) {
        case detail::prim::acquire_status::acquired:
            return semaphore_permit(this, n);
        case detail::prim::acquire_status::closed:
            return errc::closed;
        case detail::prim::acquire_status::no_permits:
            break;
        }
        return errc::empty;
    }

    detail::prim::batch_semaphore core_;
};

inline void semaphore_permit::release() noexcept {
    if (sem_ != nullptr)
        sem_->core_.release(std::exchange(permits_, 0));
    sem_ = nullptr;
}

inline void semaphore_permit::merge(semaphore_permit&& other) {
    if (other.sem_ == nullptr)
        return;
    if (sem_ == nullptr) {
        *this = std::move(other);
        return;
    }
    if (sem_ != other.sem_)
        throw std::logic_error("eddy::semaphore_permit::merge: permits of different semaphores");
    permits_ += std::exchange(other.permits_, 0);
    other.sem_ = nullptr;
}

/// One permit of `s` (a `std::shared_ptr`, never null), owned: the permit keeps the semaphore
/// alive, so it may move into a spawned task. Cancel-safe, like `semaphore::acquire`.
inline semaphore::acquire_owned_operation acquire_many_owned(std::shared_ptr<semaphore> s,
                                                             std::size_t n) {
    if (!s)
        throw std::logic_error("eddy::acquire_owned: null semaphore");
    semaphore::checked(n);
    return {std::move(s), n};
}

inline semaphore::acquire_owned_operation acquire_owned(std::shared_ptr<semaphore> s) {
    return acquire_many_owned(std::move(s), 1);
}

/// Never suspends: an owned permit, `errc::empty` or `errc::closed`.
inline result<owned_semaphore_permit> try_acquire_many_owned(std::shared_ptr<semaphore> s,
                                                             std::size_t n) {
    if (!s)
        throw std::logic_error("eddy::try_acquire_owned: null semaphore");
    switch (s->core_.try_acquire(n)) {
    case detail::prim::acquire_status::acquired:
        return owned_semaphore_permit(std::move(s), n);
    case detail::prim::acquire_status::closed:
        return errc::closed;
    case detail::prim::acquire_status::no_permits:
        break;
    }
    return errc::empty;
}

inline result<owned_semaphore_permit> try_acquire_owned(std::shared_ptr<semaphore> s) {
    return try_acquire_many_owned(std::move(s), 1);
}

inline void owned_semaphore_permit::release() noexcept {
    if (sem_)
        sem_->core_.release(std::exchange(permits_, 0));
    sem_.reset();
}

} // namespace eddy
