#pragma once
// The benchmark suite's shared pieces: workload registry, timing and the RESULT line format of
// shared/SUITE.md:  RESULT <runtime> <workload> <figure> <unit> [key=value ...]

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace suite {

/// Each workload is repeated this many times inside the process; the median is reported.
inline constexpr int repetitions = 5;

struct workload {
    std::string name;
    std::function<void()> run; // prints its own RESULT line(s)
};

inline std::vector<workload>& registry() {
    static std::vector<workload> workloads;
    return workloads;
}

/// Registers a workload at static-initialisation time: `static suite::registration r{"x", fn};`
struct registration {
    registration(std::string name, std::function<void()> fn) {
        registry().push_back({std::move(name), std::move(fn)});
    }
};

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Runs `once` (which returns the elapsed nanoseconds of its timed section) `repetitions` times.
template <class F>
double median_ns(F&& once) {
    std::vector<double> samples;
    samples.reserve(repetitions);
    for (int i = 0; i < repetitions; ++i)
        samples.push_back(once());
    return median(samples);
}

using clock = std::chrono::steady_clock;

inline double elapsed_ns(clock::time_point start) {
    return std::chrono::duration<double, std::nano>(clock::now() - start).count();
}

inline void report(std::string_view runtime, std::string_view workload, double figure,
                   std::string_view unit, std::string_view extra = {}) {
    fmt::print("RESULT {} {} {:.1f} {}{}{}\n", runtime, workload, figure, unit,
               extra.empty() ? "" : " ", extra);
    std::fflush(stdout);
}

} // namespace suite
