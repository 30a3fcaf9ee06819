#pragma once
//! What every runtime flavor's scheduler has in common: the options it was built with, the
//! `spawn_blocking` pool and the time driver it owns, and the operations `eddy::runtime` drives
//! (block_until, shutdown, metrics). The flavors (current_thread, multi_thread) derive from it.
//!
//! Threads that belong to the runtime (workers, a `block_on` caller, blocking-pool threads) set
//! `context().runtime` to it, which is how `eddy::spawn` and `runtime::handle::current()` find
//! their runtime.

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>
#include <eddy/runtime_metrics.hpp>

#include <eddy/detail/blocking/pool.hpp>
#include <eddy/detail/io/backend.hpp>
#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/scheduler/runtime_options.hpp>
#include <eddy/detail/scheduler/scheduler.hpp>
#include <eddy/detail/time/driver.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

namespace eddy::detail {

class runtime_core : public scheduler {
public:
    /// Runs tasks (or waits for the workers to run them) until `root` completes. Called from a
    /// thread that runs no runtime.
    virtual void block_until(task_header* root) = 0;

    /// Cancels every task and stops the flavor's threads (not the blocking pool's).
    virtual void shutdown() noexcept = 0;

    [[nodiscard]] runtime_metrics metrics() const {
        runtime_metrics m;
        fill_metrics(m);
        m.blocking_threads = blocking_->thread_count();
        m.idle_blocking_threads = blocking_->idle_thread_count();
        m.blocking_queue_depth = blocking_->queue_depth();
        m.active_timers = time_.active();
        m.fired_timers = time_.fired();
        io_->fill_metrics(m);
        return m;
    }

    [[nodiscard]] blocking_pool& blocking() const noexcept { return *blocking_; }
    [[nodiscard]] time_driver& time() noexcept { return time_; }
    [[nodiscard]] io_driver& io() const noexcept { return *io_; }
    /// The driver, shared: sockets keep it alive after the runtime is gone.
    [[nodiscard]] const std::shared_ptr<io_driver>& io_shared() const noexcept { return io_; }

    /// True for the current-thread flavor: every task runs on one thread (the paused test clock
    /// requires it).
    [[nodiscard]] bool single_threaded() const noexcept { return single_threaded_; }
    [[nodiscard]] const runtime_options& options() const noexcept { return options_; }

    void unhandled_exception(task_header* t, std::exception_ptr e) noexcept override {
        if (options_.unhandled_exception) {
            options_.unhandled_exception(task_id{t->id()}, std::move(e));
        }
    }

protected:
    /// `timer_shards`: one timer wheel (and io_uring ring) per worker.
    runtime_core(runtime_options options, std::uint32_t timer_shards, bool single_threaded)
        : options_(std::move(options)),
          io_(make_io_driver(options_.io, timer_shards)), // first: it may throw (a forced io_uring)
          blocking_(new blocking_pool(blocking_options_from(options_), this)),
          time_(timer_shards, options_.start_paused),
          single_threaded_(single_threaded) {
        time_.set_io(io_.get(), options_.park_spin);
    }
    ~runtime_core() override { blocking_->release(); }

    virtual void fill_metrics(runtime_metrics& m) const = 0;

    runtime_options options_;
    std::shared_ptr<io_driver> io_;
    blocking_pool* blocking_; // one reference, released by the destructor
    time_driver time_;
    const bool single_threaded_;
};

} // namespace eddy::detail
