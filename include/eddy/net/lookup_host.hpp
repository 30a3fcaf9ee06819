#pragma once
//! `eddy::net::lookup_host`: resolve "host:port" to socket addresses, without blocking a worker.
//!
//! ```cpp
//! auto addrs = co_await eddy::net::lookup_host("localhost:8080");   // result<vector<...>>
//! if (!addrs)
//!     fmt::print("lookup failed: {}\n", addrs.error().message());
//! for (const auto& a : *addrs) { /* try to connect to each in order */ }
//! ```
//!
//! - A numeric address ("127.0.0.1:80", "[::1]:80", "[fe80::1%2]:80") is parsed on the calling
//!   thread and returned at once: no system resolver, no thread hop, no suspension.
//! - Otherwise the text is split at its last ':' (the port must be decimal, 0..65535) and the host
//!   goes to `getaddrinfo` on the runtime's blocking pool (`eddy::spawn_blocking`); the awaiting
//!   task suspends until the pool thread has the answer and resumes on its runtime.
//! - The result lists each address once, in the resolver's order (RFC 6724 preference as
//!   configured in /etc/gai.conf), every one with the requested port. Only IPv4 and IPv6.
//! - The query asks for SOCK_STREAM so that each address appears once instead of once per socket
//!   type; the addresses are as good for UDP. It does not set AI_ADDRCONFIG: glibc ignores the
//!   loopback interface when deciding which families are "configured", so on a loopback-only
//!   machine or container AI_ADDRCONFIG would make even "localhost" unresolvable. Callers that
//!   try each address in turn lose nothing by seeing both families.
//! - Errors (`result::error()`): `std::errc::invalid_argument` for text that is not "host:port"
//!   (no port, a non-numeric or too large port, an empty host, an unbracketed IPv6 address with a
//!   port, brackets around a name); resolver failures in `resolver_error_category()` (named
//!   "getaddrinfo": `resolver_errc::host_not_found` for an unknown name, `try_again` for a
//!   temporary DNS failure, ...), except EAI_SYSTEM which carries the errno in
//!   `std::system_category()`. An unknown host is an error, never an empty vector.
//!   `errc::cancelled` if the runtime shut down before the query started.
//! - Must be awaited in a task of an eddy runtime (spawn_blocking throws `std::logic_error`
//!   otherwise, for non-numeric hosts).
//!
//! Cancel-safety: cancel-safe, nothing shared is lost. If the awaiting task is cancelled (aborted,
//! shut down, a select or timeout loser) while the query runs, `getaddrinfo` cannot be
//! interrupted: it keeps running on its pool thread and its answer is dropped (freed) when it
//! returns. A query still queued (every pool thread busy) is cancelled and never runs.
//! Destroying the runtime waits for a running query to return (bounded by the resolver's own
//! timeouts, see resolv.conf(5)).

#include <eddy/config.hpp>

#include <eddy/join_handle.hpp>
#include <eddy/net/socket_address.hpp>
#include <eddy/result.hpp>
#include <eddy/spawn_blocking.hpp>
#include <eddy/task.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <netdb.h>
#include <sys/socket.h>

namespace eddy::net {

/// `getaddrinfo` failures, as codes of `resolver_error_category()` (the values are the EAI_*
/// constants, so any EAI code can also be built with
/// `std::error_code(eai, resolver_error_category())`).
enum class resolver_errc {
    host_not_found = EAI_NONAME,               ///< the name is not known (NXDOMAIN, not in hosts)
    try_again = EAI_AGAIN,                     ///< temporary failure: no answer from DNS (yet)
    non_recoverable = EAI_FAIL,                ///< the name server failed permanently
    address_family_not_supported = EAI_FAMILY, ///< the requested family is not supported
    out_of_memory = EAI_MEMORY,                ///< the resolver ran out of memory
    service_not_found = EAI_SERVICE,           ///< the service is not known for the socket type
#ifdef EAI_NODATA
    no_address = EAI_NODATA, ///< the name exists but has no address
#endif
};

namespace detail {

class resolver_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "getaddrinfo"; }

    [[nodiscard]] std::string message(int value) const override {
        // glibc's gai_strerror returns static strings (thread-safe), with a generic text for
        // unknown values.
        return ::gai_strerror(value);
    }

    /// Maps the codes that have a portable meaning onto `std::errc`; the others stay here.
    [[nodiscard]] std::error_condition default_error_condition(int value) const noexcept override {
        switch (value) {
        case EAI_MEMORY:
            return std::errc::not_enough_memory;
        case EAI_FAMILY:
            return std::errc::address_family_not_supported;
        default:
            return {value, *this};
        }
    }
};

} // namespace detail

/// The category of `getaddrinfo` errors. Its name is "getaddrinfo"; messages come from
/// `gai_strerror`.
inline const std::error_category& resolver_error_category() noexcept {
    static const detail::resolver_category_impl category;
    return category;
}

inline std::error_code make_error_code(resolver_errc e) noexcept {
    return {static_cast<int>(e), resolver_error_category()};
}

} // namespace eddy::net

template <>
struct std::is_error_code_enum<eddy::net::resolver_errc> : std::true_type {};

namespace eddy::net {

namespace detail {

/// The error for a non-zero `getaddrinfo` return: EAI_SYSTEM becomes the errno it left.
inline std::error_code resolver_error(int eai, int saved_errno) noexcept {
    if (eai == EAI_SYSTEM && saved_errno != 0)
        return {saved_errno, std::system_category()};
    return {eai, resolver_error_category()};
}

/// The blocking part: `getaddrinfo` for `host`, every address given `port`, duplicates removed.
/// Runs on a blocking-pool thread.
inline result<std::vector<socket_address>> resolve_blocking(const std::string& host,
                                                            std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM; // one entry per address, not one per socket type
    hints.ai_flags = 0;              // no AI_ADDRCONFIG: see the header comment
    addrinfo* list = nullptr;
    errno = 0;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
    if (rc != 0)
        return resolver_error(rc, errno);
    struct list_deleter {
        void operator()(addrinfo* p) const noexcept { ::freeaddrinfo(p); }
    };
    const std::unique_ptr<addrinfo, list_deleter> owner(list);

    std::vector<socket_address> out;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        auto addr = socket_address::from_native(ai->ai_addr, ai->ai_addrlen);
        if (!addr || !(addr->is_ipv4() || addr->is_ipv6()))
            continue;
        addr->set_port(port);
        if (std::find(out.begin(), out.end(), *addr) == out.end())
            out.push_back(*addr);
    }
    if (out.empty())
        return make_error_code(resolver_errc::host_not_found);
    return out;
}

} // namespace detail

/// Resolves `host` (a name, a bare IP "10.0.0.1" / "::1", or a bracketed IPv6 "[::1]") and pairs
/// every address with `port`. Numeric hosts return without suspending; names suspend while
/// `getaddrinfo` runs on the blocking pool. See the header comment for errors and cancel-safety.
inline task<result<std::vector<socket_address>>> lookup_host(std::string host, std::uint16_t port) {
    std::string_view name = host;
    const bool bracketed = name.size() >= 2 && name.front() == '[' && name.back() == ']';
    if (bracketed)
        name = name.substr(1, name.size() - 2);
    if (auto ip = socket_address::parse_ip(name, port))
        co_return std::vector<socket_address>{*ip};
    // Brackets hold IPv6 literals only; a name never contains ':' or NUL.
    if (bracketed || name.empty() || name.find(':') != std::string_view::npos ||
        name.find('\0') != std::string_view::npos)
        co_return detail::invalid_address();

    auto query = spawn_blocking(
        [name = std::string(name), port] { return detail::resolve_blocking(name, port); });
    // If this frame is destroyed (cancelled) while the query still waits for a pool thread, the
    // query never runs; once running it runs to its end and its answer is dropped. Declared
    // after `query`, so it runs before the handle detaches. No effect on a finished query.
    struct cancel_on_drop {
        join_handle<result<std::vector<socket_address>>>& query;
        ~cancel_on_drop() { query.abort(); }
    } const cancel_guard{query};
    try {
        co_return co_await query;
    } catch (const join_error& e) {
        // The query was cancelled before it started: the runtime is shutting down.
        co_return e.code();
    }
}

/// Resolves "host:port": "localhost:80", "example.com:443", "127.0.0.1:8080", "[::1]:80".
/// Numeric addresses return without suspending. See the header comment for errors and
/// cancel-safety.
inline task<result<std::vector<socket_address>>> lookup_host(std::string host_and_port) {
    const std::string_view text = host_and_port;
    const std::size_t colon = text.rfind(':');
    std::uint16_t port = 0;
    if (colon == std::string_view::npos || !detail::parse_port(text.substr(colon + 1), port))
        co_return detail::invalid_address();
    const std::string_view host = text.substr(0, colon);
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    // Without brackets, a ':' in the host part means an IPv6 address whose port is ambiguous.
    if (!bracketed && host.find(':') != std::string_view::npos)
        co_return detail::invalid_address();
    co_return co_await lookup_host(std::string(host), port);
}

} // namespace eddy::net
