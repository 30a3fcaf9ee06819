// Tokio's reader for the file_read workload (file_read.cpp):
//
//   tokio  tokio::fs::read per file (std::fs::read on Tokio's blocking pool)
//
// The reader is a Rust program, bench/tokio (`tokio_file_read --repetitions R PATH...`, one of
// the crate's binaries), built by scripts/bench from Debian's packaged crates. It runs the same
// program as eddy's readers (file_read_eddy.cpp): a multi-thread runtime with 2 workers, built
// once; per repetition 64 tasks each taking the next file until none is left, timed from before
// the first spawn to the last join. It reads the same files (their paths are its arguments),
// repeats `suite::repetitions` times and prints one line per repetition, `<ns> <bytes>`, from
// which this side takes the median, after checking every repetition's byte count.
//
// Where the binary is: the path in EDDY_TOKIO_FILE_READ, else `tokio_file_read` in the suite
// binary's directory (tokio_program.hpp). When it is not there, the row is skipped with a note.

#include <fmt/format.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suite/file_read.hpp"
#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

extern char** environ;

namespace suite::file_read {

namespace {

constexpr const char* program_name = "tokio_file_read";
constexpr const char* program_env = "EDDY_TOKIO_FILE_READ";

/// Runs `argv` (argv[0] is the program's path) with its stdout on a pipe; what it printed there.
/// Throws when it cannot run or does not exit with status 0 (its stderr is the suite's).
std::string run_capturing(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "tokio file_read: pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    if (err != 0) {
        ::close(pipe_fds[0]);
        throw std::system_error(err, std::generic_category(), "tokio file_read: run " + argv[0]);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error(fmt::format("{} failed (wait status {:#x})", argv[0], status));
    return out;
}

double measure(const file_set& files) {
    std::vector<std::string> argv{tokio_program_path(program_name, program_env), "--repetitions",
                                  std::to_string(repetitions)};
    argv.insert(argv.end(), files.paths().begin(), files.paths().end());
    const std::string out = run_capturing(argv);

    std::vector<double> samples;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t end = out.find('\n', pos);
        if (end == std::string::npos)
            end = out.size();
        double ns = 0;
        std::size_t bytes = 0;
        if (std::sscanf(out.c_str() + pos, "%lf %zu", &ns, &bytes) != 2)
            throw std::runtime_error(fmt::format("{}: unexpected output '{}'", program_name,
                                                 out.substr(pos, end - pos)));
        check_total("tokio", bytes);
        samples.push_back(ns);
        pos = end + 1;
    }
    if (samples.size() != static_cast<std::size_t>(repetitions))
        throw std::runtime_error(fmt::format("{}: {} repetitions reported, expected {}",
                                             program_name, samples.size(), repetitions));
    return median(samples);
}

} // namespace

const reader& tokio_reader() {
    static const reader r{
        "tokio",
        measure,
        [] { return tokio_program_available(program_name, program_env); },
        "tokio file_read reader not built (scripts/bench builds it when cargo and "
        "librust-tokio-dev are available)",
    };
    return r;
}

} // namespace suite::file_read
