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

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "suite/file_read.hpp"
#include "suite/process.hpp"
#include "suite/suite.hpp"
#include "suite/tokio_program.hpp"

namespace suite::file_read {

namespace {

constexpr const char* program_name = "tokio_file_read";
constexpr const char* program_env = "EDDY_TOKIO_FILE_READ";

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
