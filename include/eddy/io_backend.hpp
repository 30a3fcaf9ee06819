#pragma once
//! `eddy::io_backend`: which kernel interface a runtime's I/O driver uses.
//!
//! - `automatic` (the default): io_uring when the kernel lets this process set up a ring and
//!   supports the operations eddy needs, else epoll. The environment variable `EDDY_IO_BACKEND`
//!   (`epoll`, `io_uring` or `uring`, `automatic`) overrides `automatic`, so any program, test or
//!   benchmark can be switched without recompiling.
//! - `epoll`: readiness-based, edge-triggered; operations try the system call first and wait
//!   for readiness when it would block.
//! - `io_uring`: completion-based; operations are submitted to the kernel and their completions
//!   wake the tasks. If the ring cannot be set up, `runtime::builder::build()` throws
//!   `std::system_error` saying why.
//!
//! Which one a runtime got is in `runtime_metrics::io_backend`.

#include <eddy/config.hpp>

#include <fmt/format.h>

#include <optional>
#include <string_view>

namespace eddy {

enum class io_backend {
    automatic,
    epoll,
    io_uring,
};

/// "automatic", "epoll" or "io_uring".
[[nodiscard]] constexpr std::string_view to_string(io_backend b) noexcept {
    switch (b) {
    case io_backend::automatic:
        return "automatic";
    case io_backend::epoll:
        return "epoll";
    case io_backend::io_uring:
        return "io_uring";
    }
    return "unknown";
}

/// Parses a backend name ("automatic", "epoll", "io_uring" or "uring"); nullopt for anything else.
[[nodiscard]] constexpr std::optional<io_backend> parse_io_backend(std::string_view s) noexcept {
    if (s == "automatic" || s == "auto")
        return io_backend::automatic;
    if (s == "epoll")
        return io_backend::epoll;
    if (s == "io_uring" || s == "uring")
        return io_backend::io_uring;
    return std::nullopt;
}

} // namespace eddy

template <>
struct fmt::formatter<eddy::io_backend> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(eddy::io_backend b, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format(eddy::to_string(b), ctx);
    }
};
