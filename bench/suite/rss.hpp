#pragma once
// Resident-set measurements from /proc/self/status, and running a measurement in a fresh child
// process (so memory kept by one repetition does not hide the next one's).

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <sys/wait.h>
#include <unistd.h>

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

/// Resets the process's peak resident set (VmHWM) to its current size (Linux >= 4.0), so a
/// forked child measures its own peak, not its parent's.
inline void reset_peak_rss() {
    if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

/// Runs `measure` in a forked child and returns its value: a trivially copyable `T` (a double by
/// default, or a struct of several figures). Throws if the child fails.
template <class T = double, class F>
T in_child_process(F&& measure) {
    static_assert(std::is_trivially_copyable_v<T>);
    int fds[2];
    if (::pipe(fds) != 0)
        throw std::runtime_error("pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::close(fds[0]);
        bool ok = false;
        T v{};
        try {
            v = measure();
            ok = true;
        } catch (...) {
        }
        if (ok)
            (void)!::write(fds[1], &v, sizeof v);
        ::_exit(0);
    }
    ::close(fds[1]);
    T v{};
    const ssize_t n = ::read(fds[0], &v, sizeof v);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (n != static_cast<ssize_t>(sizeof v))
        throw std::runtime_error("measurement in child process failed");
    return v;
}

} // namespace suite
