#pragma once
//! `eddy::errc`, eddy's error category, and `eddy::result<T>`: a value or a `std::error_code`.
//!
//! I/O, timeouts and channels report failure through `result<T>` rather than exceptions, so the
//! hot paths never throw. System errors keep `std::system_category()` (ECONNRESET stays
//! ECONNRESET); conditions that belong to the runtime use `eddy::errc`.

#include <eddy/config.hpp>

#include <cerrno>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace eddy {

/// Conditions raised by the runtime itself. Zero is reserved for "no error".
enum class errc {
    timed_out = 1,  ///< a `timeout` expired before the operation finished
    cancelled,      ///< the task or operation was cancelled (aborted, shut down, lost a select)
    closed,         ///< the channel, runtime or resource is closed
    lagged,         ///< a broadcast receiver fell behind and skipped values
    full,           ///< a bounded queue is full (non-blocking attempt)
    empty,          ///< nothing to receive (non-blocking attempt)
    already_taken,  ///< a one-shot value (join output, oneshot) was already consumed
    shutdown,       ///< the runtime is shutting down and refused new work
    unexpected_eof, ///< the stream ended before the requested bytes arrived (`read_exact`)
};

namespace detail {

class error_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "eddy"; }

    [[nodiscard]] std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::timed_out:
            return "operation timed out";
        case errc::cancelled:
            return "operation cancelled";
        case errc::closed:
            return "closed";
        case errc::lagged:
            return "receiver lagged behind";
        case errc::full:
            return "queue is full";
        case errc::empty:
            return "queue is empty";
        case errc::already_taken:
            return "value already taken";
        case errc::shutdown:
            return "runtime is shutting down";
        case errc::unexpected_eof:
            return "unexpected end of stream";
        }
        return "unknown eddy error";
    }

    /// Lets `ec == std::errc::timed_out` and `ec == std::errc::operation_canceled` hold for the
    /// matching eddy codes, so code written against the standard conditions keeps working.
    [[nodiscard]] bool equivalent(int value,
                                  const std::error_condition& cond) const noexcept override {
        if (cond.category() == std::generic_category()) {
            switch (static_cast<errc>(value)) {
            case errc::timed_out:
                return cond.value() == static_cast<int>(std::errc::timed_out);
            case errc::cancelled:
                return cond.value() == static_cast<int>(std::errc::operation_canceled);
            default:
                return false;
            }
        }
        return default_error_condition(value) == cond;
    }
};

} // namespace detail

/// The category of `eddy::errc` codes. Its name is "eddy".
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

} // namespace eddy

template <>
struct std::is_error_code_enum<eddy::errc> : std::true_type {};

namespace eddy {

/// Holds either a `T` or a non-zero `std::error_code`. Small and cheap to move: used on every I/O
/// path. `value()` throws `std::system_error` when it holds an error; `*r` does not check.
template <class T>
class [[nodiscard]] result {
    static_assert(!std::is_reference_v<T>, "result<T&> is not supported; use a pointer");
    static_assert(!std::is_same_v<std::remove_cv_t<T>, std::error_code>,
                  "result<std::error_code> would be ambiguous");

public:
    using value_type = T;

    // NOLINTNEXTLINE(google-explicit-constructor): a value converts to a successful result.
    result(const T& value) requires std::is_copy_constructible_v<T> { construct(value); }
    // NOLINTNEXTLINE(google-explicit-constructor)
    result(T&& value) { construct(std::move(value)); }
    template <class... Args>
    explicit result(std::in_place_t, Args&&... args) {
        construct(std::forward<Args>(args)...);
    }
    // NOLINTNEXTLINE(google-explicit-constructor): an error code converts to a failed result.
    result(std::error_code ec) noexcept : error_(ec) {
        EDDY_ASSERT(ec && "a result's error must be non-zero");
    }
    // NOLINTNEXTLINE(google-explicit-constructor)
    result(errc e) noexcept : error_(make_error_code(e)) {}

    result(const result& other) requires std::is_copy_constructible_v<T> : error_(other.error_) {
        if (!error_)
            construct(*other);
    }
    result(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
        : error_(other.error_) {
        if (!error_)
            construct(std::move(*other));
    }
    result& operator=(const result& other) requires std::is_copy_constructible_v<T> {
        if (this != &other) {
            reset();
            if (!other.error_)
                construct(*other);
            error_ = other.error_;
        }
        return *this;
    }
    result& operator=(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
        if (this != &other) {
            reset();
            if (!other.error_)
                construct(std::move(*other));
            error_ = other.error_;
        }
        return *this;
    }
    ~result() { reset(); }

    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    /// The error, or a zero `std::error_code` when a value is held.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }

    T& operator*() & noexcept { return *ptr(); }
    const T& operator*() const& noexcept { return *ptr(); }
    T&& operator*() && noexcept { return std::move(*ptr()); }
    T* operator->() noexcept { return ptr(); }
    const T* operator->() const noexcept { return ptr(); }

    T& value() & {
        check();
        return **this;
    }
    const T& value() const& {
        check();
        return **this;
    }
    T&& value() && {
        check();
        return std::move(**this);
    }

    template <class U>
    T value_or(U&& fallback) const& {
        return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
    }

private:
    template <class... Args>
    void construct(Args&&... args) {
        ::new (static_cast<void*>(&storage_)) T(std::forward<Args>(args)...);
    }
    void reset() noexcept {
        if (!error_)
            ptr()->~T();
    }
    // SAFETY: callers only dereference while `error_` is zero, which is exactly when `storage_`
    // holds a constructed T (every constructor and assignment keeps that pairing).
    T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(&storage_)); }
    const T* ptr() const noexcept { return std::launder(reinterpret_cast<const T*>(&storage_)); }
    void check() const {
        if (error_)
            throw std::system_error(error_);
    }

    alignas(T) unsigned char storage_[sizeof(T)];
    std::error_code error_;
};

/// A result that carries no value: success, or an error code.
template <>
class [[nodiscard]] result<void> {
public:
    using value_type = void;

    result() noexcept = default;
    // NOLINTNEXTLINE(google-explicit-constructor)
    result(std::error_code ec) noexcept : error_(ec) {
        EDDY_ASSERT(ec && "a result's error must be non-zero");
    }
    // NOLINTNEXTLINE(google-explicit-constructor)
    result(errc e) noexcept : error_(make_error_code(e)) {}

    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    [[nodiscard]] std::error_code error() const noexcept { return error_; }
    void value() const {
        if (error_)
            throw std::system_error(error_);
    }

private:
    std::error_code error_;
};

/// An error code from the current `errno`, in the system category.
inline std::error_code last_system_error() noexcept {
    return {errno, std::system_category()};
}

} // namespace eddy
