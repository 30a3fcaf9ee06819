#pragma once
//! A statistics counter with a single writer: increments are a relaxed load and store (no locked
//! instruction); any thread may read a recent value. Defining `EDDY_NO_METRICS` compiles the
//! updates out (the runtime metrics then read zero).

#include <eddy/config.hpp>

#include <eddy/detail/sync/atomic.hpp>

#include <cstdint>

namespace eddy::detail {

class owner_counter {
public:
    void add([[maybe_unused]] std::uint64_t n = 1) noexcept {
#if !defined(EDDY_NO_METRICS)
        // ORDERING: single writer; readers only need some recent value.
        value_.store(value_.load(memory_order_relaxed) + n, memory_order_relaxed);
#endif
    }
    void set([[maybe_unused]] std::uint64_t v) noexcept {
#if !defined(EDDY_NO_METRICS)
        value_.store(v, memory_order_relaxed);
#endif
    }
    [[nodiscard]] std::uint64_t get() const noexcept {
        return value_.load(memory_order_relaxed);
    }

private:
    atomic<std::uint64_t> value_{0};
};

/// A statistics counter any thread may bump (a relaxed atomic add); compiled out like
/// owner_counter under `EDDY_NO_METRICS`.
class shared_counter {
public:
    void add([[maybe_unused]] std::uint64_t n = 1) noexcept {
#if !defined(EDDY_NO_METRICS)
        // ORDERING: statistics only.
        value_.fetch_add(n, memory_order_relaxed);
#endif
    }
    [[nodiscard]] std::uint64_t get() const noexcept {
        return value_.load(memory_order_relaxed);
    }

private:
    atomic<std::uint64_t> value_{0};
};

} // namespace eddy::detail
