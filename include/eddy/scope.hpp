#pragma once
//! `eddy::scope`: structured concurrency. Every task spawned in a scope has finished, or been
//! cancelled and its frame destroyed, before `co_await scope.join()` returns, and before the
//! scope's destructor returns. So the children may borrow the parent's locals.
//!
//! ```cpp
//! std::vector<int> out(n);
//! eddy::scope s;                                   // or scope{scope_policy::cancel_on_failure}
//! for (std::size_t i = 0; i < n; ++i)
//!     s.spawn([&out, i]() -> eddy::task<> { out[i] = co_await compute(i); });
//! eddy::result<void> r = co_await s.join();      // rethrows the first child's exception
//! ```
//!
//! - `spawn(aw)` / `spawn(f)` start a child task on the current runtime, as `eddy::spawn` does (it
//!   runs in parallel on the runtime's workers), and return its id. The owner may spawn at any
//!   time, and so may the children themselves (through a reference to the scope), even while the
//!   owner waits in `join()`. To borrow through a lambda's captures, pass the lambda itself (it
//!   then lives in the child): `s.spawn([&x]() -> task<> {...})`, not `s.spawn([&x]() -> task<>
//!   {...}())`, whose closure dies at the end of the statement (see spawn.hpp).
//! - Children are for their side effects: a child returns `void`, an `eddy::result<U>` (an error
//!   in it is a failure), or anything else (the value is dropped; use `join_set` for values). A
//!   child fails by throwing, or by returning a result holding an error.
//! - `co_await join()` suspends until every child is gone and returns `result<void>`: empty if
//!   no child failed since the last join; the first failure's error code if that failure was a
//!   returned error; the first failure's exception is rethrown. Later failures are dropped. The
//!   scope may be reused afterwards. Cancel-safe: if the awaiting task is cancelled, nothing is
//!   lost by the join itself (the failure stays recorded); the children are cancelled by the
//!   scope's destruction that follows (below), or keep running if the scope lives on (a `join()`
//!   that lost a `select`).
//! - Policy `wait_all` (the default): a failure does not disturb the other children, `join()`
//!   waits for all of them. Policy `cancel_on_failure`: the first failure cancels every other child
//!   at once (from the failing child's thread, without waiting for the owner to reach `join()`),
//!   as do children spawned after it, until `join()` returns.
//! - `cancel()` requests cancellation of every child, and of children spawned later until
//!   `join()` returns. A cancelled child is not a failure.
//!
//! Destruction. The destructor cancels every child still alive and returns only once all their
//! frames are destroyed, which is what makes borrowing safe when the owner leaves early: its task
//! cancelled (in `join()` or anywhere else), an exception unwinding through the scope, or the
//! owner losing a `select`. The destructor cancels on its own thread every child that no other
//! thread is polling right now (queued, idle or never run: its frame is destroyed right there, at
//! its suspension point, as `abort()` would). A child being polled by another worker at that
//! moment is marked cancelled, and the destructor waits (yielding, then sleeping in 50 us steps)
//! until that poll reaches its next suspension point, then cancels it. Polls are short in async
//! code, so the wait is short; a child that blocks its thread delays the destructor as much.
//! Precisely, "gone" means: the child's body (the awaitable given to `spawn`, or the callable and
//! the awaitable it returned) is destroyed, including the awaiters it was suspended in; an
//! io_uring operation in flight there was cancelled and its completion reaped (invariant 2). What
//! may outlive that for a moment is the child's outermost frame, which belongs to the scope and
//! touches nothing of the owner's. On a current-thread runtime nothing waits: every child is
//! cancelled inline.
//! Leaving a scope normally (no exception, no cancellation) with children still running is a
//! programming error: it writes a message to stderr, then aborts the process in debug builds
//! (NDEBUG undefined) and cancels the children as above in release builds. An exception of a
//! failed child that no `join()` reported goes to the runtime's unhandled-exception hook.
//!
//! Threads: `spawn` and `cancel` from the owner or any child; `join` and the destructor from the
//! owner (one `join()` at a time), the destructor being run by whichever thread destroys the
//! owner's frame (its worker, or the thread shutting the runtime down). A scope is neither copyable
//! nor movable: children refer to it. Its children belong to the runtime of the first spawn;
//! spawning from another runtime throws `std::logic_error`.

#include <eddy/config.hpp>

#include <eddy/concepts.hpp>
#include <eddy/join.hpp>
#include <eddy/join_handle.hpp>
#include <eddy/result.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/waker.hpp>

#include <eddy/detail/context.hpp>
#include <eddy/detail/coop.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/sync/atomic.hpp>
#include <eddy/detail/sync/spin_lock.hpp>
#include <eddy/detail/task/header.hpp>
#include <eddy/detail/task/raw_task.hpp>
#include <eddy/detail/util/intrusive_list.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

namespace eddy {

/// What a child's failure does to its siblings (see scope.hpp).
enum class scope_policy {
    wait_all,          ///< nothing: join() waits for every child, then reports the first failure
    cancel_on_failure, ///< the first failure cancels every other child at once
};

namespace detail {

struct scope_child_tag;

/// A child's entry in its scope's live list. It lives in the child's own frame (inside its
/// `scope_ticket`) and is linked from just before the spawn until the child's body is destroyed.
struct scope_node : list_node<scope_node, scope_child_tag> {
    /// The child task, with one reference, from the moment `spawn_on` returned (null before).
    /// Guarded by the scope's lock.
    task_header* child = nullptr;
};

/// What a scope and its children share. Reference counted: the scope holds one reference and
/// every child's ticket another, so a child finishing while the owner leaves touches live memory.
class scope_state {
public:
    explicit scope_state(scope_policy p) noexcept : policy_(p) {}
    scope_state(const scope_state&) = delete;
    scope_state& operator=(const scope_state&) = delete;

    void retain() noexcept {
        // ORDERING: relaxed, derived from an existing reference.
        refs_.fetch_add(1, memory_order_relaxed);
    }
    void release() noexcept {
        // ORDERING: acq_rel so the freeing thread sees every other owner's last use.
        if (refs_.fetch_sub(1, memory_order_acq_rel) == 1)
            delete this;
    }

    [[nodiscard]] scope_policy policy() const noexcept { return policy_; }

    [[nodiscard]] std::size_t live() const noexcept {
        std::lock_guard g(lock_);
        return live_.size();
    }

    /// The scheduler the children run on (set by the first spawn, before any child exists; later
    /// spawns, from the owner or from children, only read it).
    scheduler* sched = nullptr;

    /// Links a child about to be spawned.
    void link(scope_node& n) noexcept {
        std::lock_guard g(lock_);
        live_.push_back(&n);
    }

    /// After `spawn_on` returned: records the task (taking a reference) unless the child is gone
    /// already, and cancels it if the scope is cancelling.
    void spawned(scope_node& n, task_header* t) noexcept {
        {
            std::lock_guard g(lock_);
            if (!n.linked())
                return;
            t->state.ref_inc();
            n.child = t;
            if (!cancelling_)
                return;
        }
        abort_task(t);
    }

    /// The child's body is gone (finished or destroyed): unlinks it, wakes `join()` if it was the
    /// last one. From the child's thread, inside its poll or its cancellation.
    void unlink(scope_node& n) noexcept {
        waker w;
        task_header* t = nullptr;
        {
            std::lock_guard g(lock_);
            if (!n.linked())
                return; // never linked: the spawn failed before
            live_.remove(&n);
            t = std::exchange(n.child, nullptr);
            if (live_.empty())
                w = std::move(joiner_);
        }
        w.wake();
        if (t != nullptr)
            release_task(t); // never the last: the child is being polled or cancelled
    }

    /// A child failed: records the first failure; with `cancel_on_failure`, cancels the others.
    /// `self` is the failing child's task (it is running: its reference count is live).
    void fail(task_header* self, const scope_node& n, std::exception_ptr e,
              std::error_code ec) noexcept {
        bool cancel = false;
        {
            std::lock_guard g(lock_);
            if (!failed_) {
                failed_ = true;
                error_ = ec;
                if (e) {
                    exception_ = std::move(e);
                    self->state.ref_inc();
                    failed_task_ = self;
                }
            }
            if (policy_ == scope_policy::cancel_on_failure && !cancelling_) {
                cancelling_ = true;
                cancel = true;
            }
        }
        if (cancel)
            cancel_all(&n);
    }

    /// Requests cancellation of every child but `except`, and of those spawned from now on until
    /// the next join. Aborting under the lock keeps the entries alive; `abort_task` only queues.
    void cancel_all(const scope_node* except = nullptr) noexcept {
        std::lock_guard g(lock_);
        cancelling_ = true;
        for (scope_node* n = live_.front(); n != nullptr;
             n = intrusive_list<scope_node, scope_child_tag>::next(n)) {
            if (n != except && n->child != nullptr)
                abort_task(n->child);
        }
    }

    /// Cancels every child and returns once all their bodies are destroyed (see scope.hpp).
    void reap_all() noexcept {
        {
            std::lock_guard g(lock_);
            cancelling_ = true; // children spawned by children still running are aborted too
        }
        for (unsigned spins = 0;;) {
            task_header* t = nullptr;
            {
                std::lock_guard g(lock_);
                scope_node* n = live_.front();
                if (n == nullptr)
                    return;
                t = n->child;
                if (t != nullptr)
                    t->state.ref_inc(); // the entry goes away with the child; keep the header
            }
            if (t == nullptr) {
                // Another thread (a child) is inside spawn() for this entry right now.
                backoff(spins++);
                continue;
            }
            reap(t);
            release_task(t);
        }
    }

    /// join(): arms `w` unless no child is left. False when none is (then `w` is untouched).
    bool arm_joiner(waker& w) {
        std::lock_guard g(lock_);
        if (live_.empty())
            return false;
        if (joiner_) {
            throw std::logic_error(
                "eddy::scope::join: the scope is already being joined (one join at a time, from "
                "the task that owns the scope)");
        }
        joiner_ = std::move(w);
        return true;
    }

    /// A join() awaiter that armed its waker goes away before being woken.
    void disarm_joiner() noexcept {
        waker w;
        std::lock_guard g(lock_);
        w = std::move(joiner_); // dropped after unlocking (the guard is declared after `w`)
    }

    /// join() completes: takes the first failure since the last join and ends the cancellation.
    result<void> take_outcome() {
        std::exception_ptr e;
        std::error_code ec;
        task_header* t = nullptr;
        {
            std::lock_guard g(lock_);
            e = std::move(exception_);
            exception_ = nullptr;
            ec = error_;
            error_ = {};
            t = std::exchange(failed_task_, nullptr);
            failed_ = false;
            cancelling_ = false;
        }
        if (t != nullptr)
            release_task(t);
        if (e)
            std::rethrow_exception(std::move(e));
        if (ec)
            return ec;
        return {};
    }

    /// The scope goes away: an exception no join reported goes to the runtime's hook, as an
    /// exception of a task nobody joined does.
    void report_unjoined_failure() noexcept {
        task_header* t = std::exchange(failed_task_, nullptr);
        std::exception_ptr e = std::move(exception_);
        if (t == nullptr)
            return;
        if (e)
            t->sched->unhandled_exception(t, std::move(e));
        release_task(t);
    }

private:
    /// Destroys the frame of child `t` (the caller holds a reference): here if no thread polls it,
    /// else once the thread polling it lets go of it.
    static void reap(task_header* t) noexcept {
        for (unsigned spins = 0;; ++spins) {
            if (t->sched->cancel_here(t))
                return;
            // ORDERING: acquire pairs with the release in transition_to_complete: the child's
            // unlink (which happened before its completion) is visible to the next lookup.
            if (t->state.load() & task_state::complete)
                return;
            // Polled by another thread right now, and marked CANCELLED: retry after its poll.
            backoff(spins);
        }
    }

    static void backoff(unsigned spins) noexcept {
        if (spins < 64) {
            std::this_thread::yield();
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }

    ~scope_state() {
        EDDY_ASSERT(live_.empty());
        EDDY_ASSERT(failed_task_ == nullptr);
    }

    atomic<std::size_t> refs_{1};
    mutable spin_lock lock_;
    intrusive_list<scope_node, scope_child_tag> live_; ///< children whose body is not gone yet
    waker joiner_;                                     ///< join()'s, while it waits
    std::exception_ptr exception_;                     ///< the first failure, if it threw
    std::error_code error_;                            ///< the first failure, if it returned one
    task_header* failed_task_ = nullptr;               ///< the child that threw it (one reference)
    bool failed_ = false;
    bool cancelling_ = false;
    const scope_policy policy_;
};

/// The parameter of a child's outer coroutine: its entry in the scope, and the body it runs.
/// Destroying the ticket (with the frame, when the child is cancelled) destroys the body first,
/// then unlinks the entry, so the scope sees the child gone only once nothing of the body is left.
template <class T>
struct scope_ticket : scope_node {
    /// `where` is told the address of the ticket each time it moves: the last one is the copy
    /// inside the child's coroutine frame.
    scope_ticket(scope_state* s, task<T> b, scope_ticket** where) noexcept
        : state(s), body(std::move(b)), where(where) {
        *where = this;
    }
    scope_ticket(scope_ticket&& other) noexcept
        : state(std::exchange(other.state, nullptr)),
          self(other.self),
          body(std::move(other.body)),
          where(other.where) {
        EDDY_ASSERT(!other.linked());
        if (where != nullptr)
            *where = this;
    }
    scope_ticket& operator=(scope_ticket&&) = delete;
    ~scope_ticket() { finish(); }

    void fail(std::exception_ptr e, std::error_code ec) noexcept {
        state->fail(self, *this, std::move(e), ec);
    }

    /// The body is done (or being cancelled): destroy it, then leave the scope.
    void finish() noexcept {
        if (scope_state* s = std::exchange(state, nullptr)) {
            body = task<T>();
            s->unlink(*this);
            s->release();
        }
    }

    scope_state* state;          ///< one reference, until finish()
    task_header* self = nullptr; ///< the child task (set before it is spawned)
    task<T> body;
    scope_ticket** where; ///< reset once the ticket reached the frame
};

/// A child's outermost coroutine: runs the body, records a failure, leaves the scope.
template <class T>
task<> run_scope_child(scope_ticket<T> ticket) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(ticket.body);
        } else if constexpr (is_result<T>::value) {
            T r = co_await std::move(ticket.body);
            if (!r.has_value())
                ticket.fail(nullptr, r.error());
        } else {
            static_cast<void>(co_await std::move(ticket.body));
        }
    } catch (...) {
        ticket.fail(std::current_exception(), {});
    }
    ticket.finish();
}

} // namespace detail

class scope {
public:
    explicit scope(scope_policy policy = scope_policy::wait_all)
        : state_(new detail::scope_state(policy)),
          creator_(detail::context().task),
          uncaught_(std::uncaught_exceptions()) {}
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    scope(scope&&) = delete;
    scope& operator=(scope&&) = delete;

    /// See the header comment: cancels the children still alive and waits until they are gone.
    ~scope() {
        if (state_->live() != 0) {
            if (!leaving_early()) {
                std::fputs("eddy: an eddy::scope was destroyed with children still running; "
                           "co_await scope.join() before leaving it (the children are cancelled)\n",
                           stderr);
#ifndef NDEBUG
                std::abort();
#endif
            }
            state_->reap_all();
        }
        state_->report_unjoined_failure();
        state_->release();
    }

    /// Spawns `aw` as a child on the current runtime (see `eddy::spawn`). Returns its id.
    template <awaitable A>
    task_id spawn(A&& aw) {
        detail::scheduler& s = runtime_for_spawn();
        return add(s, detail::into_task(std::forward<A>(aw)));
    }

    /// Spawns the awaitable `f()` returns, keeping `f` (and its captures) alive in the child.
    template <class F>
    requires detail::awaitable_factory<F> task_id spawn(F&& f) {
        detail::scheduler& s = runtime_for_spawn();
        return add(s, detail::invoke_into_task(std::forward<F>(f)));
    }

    /// Requests cancellation of every child, and of the children spawned from now on until
    /// `join()` returns. Does not wait: `join()` does.
    void cancel() noexcept {
        state_->cancel_all();
    }

    /// Children whose frame is not destroyed yet.
    [[nodiscard]] std::size_t size() const noexcept {
        return state_->live();
    }
    [[nodiscard]] bool empty() const noexcept {
        return size() == 0;
    }
    [[nodiscard]] scope_policy policy() const noexcept {
        return state_->policy();
    }

    class [[nodiscard]] join_operation {
    public:
        explicit join_operation(scope& s) noexcept : state_(s.state_) {}
        /// Movable until awaited (so it can be handed to a combinator or a helper by value).
        join_operation(join_operation&& other) noexcept : state_(other.state_) {
            EDDY_ASSERT(!other.registered_);
        }
        join_operation& operator=(const join_operation&) = delete;
        ~join_operation() {
            if (registered_)
                state_->disarm_joiner(); // cancelled while waiting
        }

        bool await_ready() const noexcept {
            // No child left is a ready result: it spends cooperative budget (coop.hpp).
            return state_->live() == 0 && detail::coop::try_consume();
        }

        bool await_suspend(std::coroutine_handle<> h) {
            waker w = current_waker(h);
            if (state_->arm_joiner(w)) {
                registered_ = true;
                return true;
            }
            // No child left (the budget is spent, or the last one just went): resume at once if
            // the budget allows, else yield first.
            if (detail::coop::try_consume())
                return false;
            detail::coop::yield_current(h);
            return true;
        }

        /// Rethrows the first failure's exception; its error code; or an empty result.
        result<void> await_resume() {
            registered_ = false; // the waker was taken by the child that woke us
            return state_->take_outcome();
        }

    private:
        detail::scope_state* state_;
        bool registered_ = false;
    };

    /// Waits until every child is gone; see the header comment.
    join_operation join() noexcept {
        return join_operation(*this);
    }

private:
    detail::scheduler& runtime_for_spawn() {
        detail::scheduler& s = detail::current_scheduler("eddy::scope::spawn");
        if (state_->sched == nullptr) {
            state_->sched = &s;
        } else if (state_->sched != &s) {
            throw std::logic_error(
                "eddy::scope::spawn: called from another runtime than the scope's first spawn");
        }
        return s;
    }

    template <class R>
    task_id add(detail::scheduler& s, task<R> body) {
        detail::scope_ticket<R>* ticket = nullptr;
        state_->retain(); // the ticket's
        task<> child =
            detail::run_scope_child<R>(detail::scope_ticket<R>(state_, std::move(body), &ticket));
        // The ticket now lives in the child's frame, at a fixed address. The child is not
        // running yet: its fields are still ours.
        ticket->where = nullptr;
        std::coroutine_handle<detail::promise<void>> h = child.release();
        ticket->self = detail::task_header::from_frame(h.address());
        child = task<>(h);
        state_->link(*ticket);
        join_handle<void> jh = detail::spawn_on(s, std::move(child));
        // SAFETY: `jh` holds a reference, so the frame stays allocated, and the ticket in it alive
        // unless the child was cancelled: nothing can cancel it before `spawned` records it,
        // except a runtime shutting down, which refuses the spawn and cancels the child inside
        // spawn_on. (The state word, not `frame_destroyed()`: the child may be running on
        // another worker already, writing its resume point.)
        detail::task_header* t = detail::join_access<void>::header(jh);
        if (!(t->state.load() & detail::task_state::cancelled))
            state_->spawned(*ticket, t);
        return jh.id();
        // Dropping `jh` detaches: the child never throws (failures are recorded above).
    }

    /// Whether the destructor runs because the owner leaves early on purpose: its task (or
    /// combinator branch) is cancelled, destroying the frame at a suspension point, or an
    /// exception unwinds through the scope. Otherwise the code simply left without joining.
    [[nodiscard]] bool leaving_early() const noexcept {
        if (std::uncaught_exceptions() > uncaught_)
            return true;
        detail::resumable* current = detail::context().task;
        // Destroyed by someone else (a combinator dropping the branch that owns the scope), or
        // by the task's own cancellation, which marks the frame destroyed first.
        return current != creator_ || (current != nullptr && !current->resume_point);
    }

    detail::scope_state* state_;       // one reference
    const detail::resumable* creator_; // the task or branch whose code created the scope
    const int uncaught_;               // std::uncaught_exceptions() then
};

} // namespace eddy
