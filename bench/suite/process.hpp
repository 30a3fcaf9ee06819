#pragma once
// Child processes of the suite: the Tokio programs (tokio_program.hpp) and the suite re-executed
// for a measurement of its own (rss.hpp).

#include <string>
#include <vector>

namespace suite {

/// Runs `argv` (argv[0] is the program's path) with its stdout on a pipe; what it printed there.
/// Throws when it cannot run or does not exit with status 0 (its stderr is the suite's).
std::string run_capturing(const std::vector<std::string>& argv);

} // namespace suite
