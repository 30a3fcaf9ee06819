#pragma once
//! The one place eddy's internals take their atomics from.
//!
//! Every lock-free structure uses `detail::atomic` and `detail::memory_order_*` instead of naming
//! `std::atomic` directly, so a model checker or a yield-injecting atomic can be swapped in here
//! without touching the algorithms. Never use `std::atomic_thread_fence`: ThreadSanitizer does not
//! model fences, so the ordering goes on the atomic operations themselves.

#include <atomic>

namespace eddy::detail {

template <class T>
using atomic = std::atomic<T>;

inline constexpr std::memory_order memory_order_relaxed = std::memory_order_relaxed;
inline constexpr std::memory_order memory_order_acquire = std::memory_order_acquire;
inline constexpr std::memory_order memory_order_release = std::memory_order_release;
inline constexpr std::memory_order memory_order_acq_rel = std::memory_order_acq_rel;
inline constexpr std::memory_order memory_order_seq_cst = std::memory_order_seq_cst;

} // namespace eddy::detail
