#pragma once
// Resident-set measurements from /proc/self/status, and running a measurement in a fresh child
// process (so memory kept by one repetition, or by the workloads run before, does not count).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "suite/process.hpp"

namespace suite {

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
inline long status_kib(const char* field) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr)
        throw std::runtime_error("cannot open /proc/self/status");
    char line[256];
    long value = -1;
    const std::size_t len = std::strlen(field);
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
            value = std::strtol(line + len + 1, nullptr, 10);
            break;
        }
    }
    std::fclose(f);
    if (value < 0)
        throw std::runtime_error(std::string("no ") + field + " in /proc/self/status");
    return value;
}

/// Resets the process's peak resident set (VmHWM) to its current size (Linux >= 4.0), so the
/// peak a measurement reads is its own.
inline void reset_peak_rss() {
    if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

/// A measurement that runs in a process of its own (`in_child_process`): its name, and a
/// function that runs it and returns the figures' bytes.
struct child_measure {
    const char* name;
    std::string (*run)();
};

inline std::vector<child_measure>& child_measures() {
    static std::vector<child_measure> all;
    return all;
}

/// `measure`'s figures (a trivially copyable `T`) as bytes, for `child_measure::run`.
template <class T, T (*Measure)()>
std::string figures_bytes() {
    static_assert(std::is_trivially_copyable_v<T>);
    const T v = Measure();
    return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

/// Registers a child measurement at static initialisation:
///   const suite::child_registration child{"sleep_many", suite::figures_bytes<figures, once>};
struct child_registration {
    child_registration(const char* name, std::string (*run)()) {
        child_measures().push_back({name, run});
    }
};

/// The child's program, run by `suite --measure NAME` (main.cpp): runs the measurement and
/// writes its figures to stdout. Exit status 0 on success; 1 (and why, on stderr) on failure.
[[noreturn]] inline void child_measure_main(const char* name) {
    for (const child_measure& m : child_measures()) {
        if (std::strcmp(m.name, name) != 0)
            continue;
        try {
            const std::string bytes = m.run();
            if (::write(STDOUT_FILENO, bytes.data(), bytes.size()) !=
                static_cast<ssize_t>(bytes.size()))
                std::_Exit(1);
            std::_Exit(0);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "suite: %s: %s\n", name, e.what());
            std::_Exit(1);
        }
    }
    std::fprintf(stderr, "suite: no child measurement '%s'\n", name);
    std::_Exit(1);
}

/// Runs the registered measurement `name` in a fresh process (this program re-executed, so it
/// starts with nothing the earlier workloads allocated: a forked child would inherit their heap,
/// count it in its peak and take copy-on-write faults in it) and returns its figures, a
/// trivially copyable `T`. Throws if the child fails.
template <class T = double>
T in_child_process(const char* name) {
    static_assert(std::is_trivially_copyable_v<T>);
    const std::string bytes = run_capturing({"/proc/self/exe", "--measure", name});
    if (bytes.size() != sizeof(T))
        throw std::runtime_error(std::string("measurement ") + name + " in a child process failed");
    T v{};
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
}

} // namespace suite
