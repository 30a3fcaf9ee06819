#pragma once
//! Build-wide switches and the few macros every eddy header uses.
//!
//! Nothing here allocates or starts threads; it is safe to include first everywhere.

#include <cstdio>
#include <cstdlib>

/// Version of the library, as `major * 10000 + minor * 100 + patch`.
#define EDDY_VERSION 100

#if defined(__clang__) || defined(__GNUC__)
#define EDDY_LIKELY(x) __builtin_expect(!!(x), 1)
#define EDDY_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define EDDY_NOINLINE __attribute__((noinline))
#define EDDY_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define EDDY_LIKELY(x) (x)
#define EDDY_UNLIKELY(x) (x)
#define EDDY_NOINLINE
#define EDDY_ALWAYS_INLINE inline
#endif

namespace eddy::detail {

[[noreturn]] inline void assertion_failed(const char* expr, const char* file, int line) noexcept {
    std::fprintf(stderr, "eddy: internal invariant violated: %s (%s:%d)\n", expr, file, line);
    std::abort();
}

} // namespace eddy::detail

/// Checks an internal invariant. Always on: the checks guard memory safety of the task state
/// machine and cost a predictable branch. Define `EDDY_NO_ASSERT` to compile them out.
#if defined(EDDY_NO_ASSERT)
#define EDDY_ASSERT(expr) ((void)0)
#else
#define EDDY_ASSERT(expr)                                                                          \
    (EDDY_LIKELY(expr) ? (void)0 : ::eddy::detail::assertion_failed(#expr, __FILE__, __LINE__))
#endif
