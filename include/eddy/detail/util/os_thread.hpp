#pragma once
//! A joinable OS thread with the knobs `std::thread` lacks: a name (shown by `top -H`, gdb and
//! perf) and a stack size. Used for the runtime's worker and blocking threads.

#include <eddy/config.hpp>

#include <cerrno>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <pthread.h>

namespace eddy::detail {

class os_thread {
public:
    os_thread() noexcept = default;

    /// Starts `fn` on a new thread. `name` is truncated to the kernel's 15 characters;
    /// `stack_size` 0 keeps the default. Throws `std::system_error` if the thread cannot start.
    os_thread(const std::string& name, std::size_t stack_size, std::function<void()> fn) {
        pthread_attr_t attr;
        if (int rc = pthread_attr_init(&attr); rc != 0)
            throw_error(rc, "pthread_attr_init");
        struct attr_guard {
            pthread_attr_t* a;
            ~attr_guard() { pthread_attr_destroy(a); }
        } guard{&attr};
        if (stack_size != 0) {
            if (int rc = pthread_attr_setstacksize(&attr, stack_size); rc != 0) {
                throw_error(rc, "pthread_attr_setstacksize (stack size too small?)");
            }
        }
        auto start = std::make_unique<start_data>(start_data{name.substr(0, 15), std::move(fn)});
        if (int rc = pthread_create(&handle_, &attr, &trampoline, start.get()); rc != 0) {
            throw_error(rc, "pthread_create");
        }
        // SAFETY: the new thread owns `start` from here on and frees it.
        (void)start.release();
        joinable_ = true;
    }

    os_thread(os_thread&& other) noexcept
        : handle_(other.handle_), joinable_(std::exchange(other.joinable_, false)) {}
    os_thread& operator=(os_thread&& other) noexcept {
        if (this != &other) {
            EDDY_ASSERT(!joinable_);
            handle_ = other.handle_;
            joinable_ = std::exchange(other.joinable_, false);
        }
        return *this;
    }
    os_thread(const os_thread&) = delete;
    os_thread& operator=(const os_thread&) = delete;
    ~os_thread() { EDDY_ASSERT(!joinable_ && "os_thread destroyed without join()"); }

    [[nodiscard]] bool joinable() const noexcept { return joinable_; }

    /// True when called on this thread itself.
    [[nodiscard]] bool is_current() const noexcept {
        return joinable_ && pthread_equal(handle_, pthread_self()) != 0;
    }

    void join() noexcept {
        if (std::exchange(joinable_, false))
            pthread_join(handle_, nullptr);
    }

private:
    struct start_data {
        std::string name;
        std::function<void()> fn;
    };

    static void* trampoline(void* arg) noexcept {
        std::unique_ptr<start_data> data(static_cast<start_data*>(arg));
        if (!data->name.empty())
            pthread_setname_np(pthread_self(), data->name.c_str());
        data->fn();
        return nullptr;
    }

    [[noreturn]] static void throw_error(int rc, const char* what) {
        throw std::system_error(rc, std::system_category(), std::string("eddy: ") + what);
    }

    pthread_t handle_{};
    bool joinable_ = false;
};

} // namespace eddy::detail
