#pragma once
//! Choosing and creating a runtime's I/O driver (see eddy/io_backend.hpp for the rules).

#include <eddy/config.hpp>

#include <eddy/io_backend.hpp>

#include <eddy/detail/io/driver.hpp>
#include <eddy/detail/io/epoll_driver.hpp>
#include <eddy/detail/io/uring_driver.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace eddy::detail {

/// The backend `requested` resolves to before trying it: `EDDY_IO_BACKEND` replaces
/// `automatic`. Throws `std::invalid_argument` for a value the variable cannot hold.
inline io_backend resolve_io_backend(io_backend requested) {
    if (requested != io_backend::automatic)
        return requested;
    const char* env = std::getenv("EDDY_IO_BACKEND");
    if (env == nullptr || *env == '\0')
        return io_backend::automatic;
    if (auto b = parse_io_backend(env))
        return *b;
    throw std::invalid_argument(
        fmt::format("eddy: EDDY_IO_BACKEND='{}' is not one of automatic, epoll, io_uring", env));
}

/// Whether eddy logs its choice of backend: `EDDY_LOG` set to `info` or `debug`.
inline bool io_log_enabled() noexcept {
    const char* env = std::getenv("EDDY_LOG");
    if (env == nullptr)
        return false;
    const std::string_view v(env);
    return v == "info" || v == "debug";
}

/// Creates the driver. A forced io_uring that cannot start throws `std::system_error` (with the
/// reason); `automatic` falls back to epoll and says so on stderr, once per process. `workers`:
/// the runtime's worker threads (io_uring gives each a ring of its own).
inline std::shared_ptr<io_driver> make_io_driver(io_backend requested, std::uint32_t workers = 1) {
    const io_backend choice = resolve_io_backend(requested);
    if (choice == io_backend::epoll)
        return std::make_shared<epoll_driver>();
    if (choice == io_backend::io_uring)
        return std::make_shared<uring_driver>(workers);
    static std::once_flag logged;
    try {
        auto d = std::make_shared<uring_driver>(workers);
        if (io_log_enabled()) {
            std::call_once(logged,
                           [] { fmt::print(stderr, "eddy: I/O backend io_uring (automatic)\n"); });
        }
        return d;
    } catch (const std::system_error& e) {
        std::call_once(logged, [&e] {
            fmt::print(stderr, "eddy: io_uring unavailable ({}); I/O backend epoll\n", e.what());
        });
        return std::make_shared<epoll_driver>();
    }
}

} // namespace eddy::detail
