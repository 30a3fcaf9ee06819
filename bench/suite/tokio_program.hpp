#pragma once
// Where the suite finds the Tokio programs it compares with (bench/tokio, Rust binaries:
// tokio_echo, tokio_file_read, and tokio_runtime for the runtime workloads), and how it runs them
// (tokio_program.cpp).
// scripts/bench builds them from Debian's packaged crates and copies them next to the suite
// binary; each can be pointed elsewhere with an environment variable. They are optional: a
// workload whose program is missing skips Tokio with a note.

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <limits.h>
#include <unistd.h>

#include "suite/process.hpp"

namespace suite {

/// The Tokio program `name`: the path in the environment variable `env` when set, else `name` in
/// this executable's directory.
inline std::string tokio_program_path(const char* name, const char* env) {
    if (const char* v = std::getenv(env); v != nullptr && *v != '\0')
        return v;
    char self[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return name;
    std::string dir(self, static_cast<std::size_t>(n));
    const std::size_t slash = dir.rfind('/');
    dir.resize(slash == std::string::npos ? 0 : slash + 1);
    return dir + name;
}

/// Whether the program `tokio_program_path(name, env)` exists and is executable.
inline bool tokio_program_available(const char* name, const char* env) {
    return ::access(tokio_program_path(name, env).c_str(), X_OK) == 0;
}

/// How Tokio's program for a runtime workload runs its `repetitions`.
enum class tokio_processes {
    one,                ///< all in one process, on one runtime, as eddy's workloads do
    one_per_repetition, ///< a fresh process each, as eddy starts one for a figure of memory
};

/// Tokio's row of the runtime workload `workload`, printed right after eddy's: runs
/// `tokio_runtime WORKLOAD --repetitions R` (bench/tokio/src/bin/tokio_runtime.rs, the same program
/// as eddy's written with Tokio; its path in EDDY_TOKIO_RUNTIME, else next to the suite binary),
/// which prints one line per repetition, `<figure> [key=value ...]`, and prints
/// `RESULT tokio <workload> <median> <unit> [key=<median> ...]`. When the program is missing (said
/// once per run) or fails, says so on stderr and prints no row: eddy's figure stands alone.
void report_tokio(std::string_view workload, std::string_view unit,
                  tokio_processes processes = tokio_processes::one);

} // namespace suite
