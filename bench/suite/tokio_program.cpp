// Running the Tokio programs (tokio_program.hpp): each is a child process whose stdout the suite
// reads whole (process.hpp). The runtime workloads' rows (report_tokio) come from one program,
// tokio_runtime.

#include "suite/tokio_program.hpp"

#include <fmt/format.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "suite/process.hpp"
#include "suite/suite.hpp"

namespace suite {

namespace {

constexpr const char* runtime_program = "tokio_runtime";
constexpr const char* runtime_env = "EDDY_TOKIO_RUNTIME";

/// One figure's values, one per repetition: the main one (empty key) or a key=value extra.
struct series {
    std::string key;
    std::vector<double> values;
};

double parse_number(const std::string& text, const std::string& line) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0')
        throw std::runtime_error(fmt::format("{}: unexpected output '{}'", runtime_program, line));
    return v;
}

/// Adds the figures of `out` (lines `<figure> [key=value ...]`) to `figures`.
void parse_lines(const std::string& out, std::vector<series>& figures) {
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string word;
        bool first = true;
        while (words >> word) {
            std::string key;
            std::string value = word;
            if (!first) {
                const std::size_t eq = word.find('=');
                if (eq == std::string::npos)
                    throw std::runtime_error(
                        fmt::format("{}: unexpected output '{}'", runtime_program, line));
                key = word.substr(0, eq);
                value = word.substr(eq + 1);
            }
            first = false;
            std::size_t i = 0;
            while (i < figures.size() && figures[i].key != key)
                ++i;
            if (i == figures.size())
                figures.push_back({key, {}});
            figures[i].values.push_back(parse_number(value, line));
        }
    }
}

} // namespace

void report_tokio(std::string_view workload, std::string_view unit, tokio_processes processes) {
    if (!tokio_program_available(runtime_program, runtime_env)) {
        static bool said = false;
        if (!said) {
            fmt::print(stderr,
                       "suite: tokio runtime program not built (scripts/bench builds it when cargo "
                       "and librust-tokio-dev are available); skipping the tokio rows\n");
            said = true;
        }
        return;
    }
    try {
        const bool fresh = processes == tokio_processes::one_per_repetition;
        const std::vector<std::string> argv{tokio_program_path(runtime_program, runtime_env),
                                            std::string(workload), "--repetitions",
                                            std::to_string(fresh ? 1 : repetitions)};
        std::vector<series> figures;
        for (int run = 0; run < (fresh ? repetitions : 1); ++run)
            parse_lines(run_capturing(argv), figures);
        if (figures.empty() || !figures.front().key.empty())
            throw std::runtime_error(fmt::format("{} printed no figure", runtime_program));
        std::string extra;
        for (const auto& f : figures) {
            if (f.values.size() != static_cast<std::size_t>(repetitions)) {
                throw std::runtime_error(fmt::format("{}: {} values of '{}', expected {}",
                                                     runtime_program, f.values.size(), f.key,
                                                     repetitions));
            }
            if (!f.key.empty())
                extra +=
                    fmt::format("{}{}={:.1f}", extra.empty() ? "" : " ", f.key, median(f.values));
        }
        report("tokio", workload, median(figures.front().values), unit, extra);
    } catch (const std::exception& e) {
        fmt::print(stderr, "suite: {} (tokio): {}; no tokio row\n", workload, e.what());
    }
}

} // namespace suite
