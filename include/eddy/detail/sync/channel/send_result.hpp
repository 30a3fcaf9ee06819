#pragma once
//! `send_result<T>`: the outcome of a channel send that hands the value back when it fails.
//!
//! Success holds nothing; failure holds an error code (`errc::closed`, `errc::full`) and the value
//! that was not sent, so the caller keeps ownership of it (Tokio's `SendError<T>(T)` and
//! `TrySendError<T>`). The mpsc, oneshot and watch senders re-export it in their namespaces.

#include <eddy/config.hpp>

#include <eddy/result.hpp>

#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace eddy::detail::channel {

template <class T>
class [[nodiscard]] send_result {
public:
    /// Success.
    send_result() noexcept = default;
    /// Failure with `e`; `value` is handed back to the caller.
    send_result(errc e, T&& value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : error_(make_error_code(e)), rejected_(std::move(value)) {}

    [[nodiscard]] bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    /// `errc::closed` or `errc::full` on failure, a zero code on success.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }

    /// Throws `std::system_error` on failure (the value stays inside), like `result<void>`.
    void value() const {
        if (error_)
            throw std::system_error(error_);
    }

    /// The value that was not sent. Only on failure (`std::logic_error` on success).
    [[nodiscard]] T& rejected() & { return checked(); }
    [[nodiscard]] T&& rejected() && { return std::move(checked()); }

private:
    T& checked() {
        if (!rejected_)
            throw std::logic_error("eddy: send_result::rejected() on a successful send");
        return *rejected_;
    }

    std::error_code error_;
    std::optional<T> rejected_;
};

} // namespace eddy::detail::channel
