// suite [workload ...]: runs the named workloads of shared/SUITE.md (all by default) and prints
// one RESULT line per figure. `suite --list` prints the names. (`suite --echo-server NAME FD` is
// how the echo workloads start their servers: see echo_server.hpp; `suite --measure NAME`
// how sleep_many and idle_tasks run each repetition in a fresh process: see rss.hpp.
// `suite --check-echo [NAME ...]` checks the echo servers instead of timing them: see echo.cpp.)

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "suite/echo_server.hpp"
#include "suite/rss.hpp"
#include "suite/suite.hpp"

int main(int argc, char** argv) {
    auto& all = suite::registry();
    if (argc == 4 && std::strcmp(argv[1], "--echo-server") == 0)
        suite::echo_server_main(argv[2], std::atoi(argv[3]));
    if (argc == 3 && std::strcmp(argv[1], "--measure") == 0)
        suite::child_measure_main(argv[2]);
    if (argc > 1 && std::strcmp(argv[1], "--check-echo") == 0)
        return suite::check_echo_servers({argv + 2, argv + argc});
    if (argc > 1 && std::strcmp(argv[1], "--list") == 0) {
        for (const auto& w : all)
            fmt::print("{}\n", w.name);
        return 0;
    }
    if (argc == 1) {
        for (const auto& w : all)
            w.run();
        return 0;
    }
    int status = 0;
    for (int i = 1; i < argc; ++i) {
        bool found = false;
        for (const auto& w : all) {
            if (w.name == argv[i]) {
                w.run();
                found = true;
            }
        }
        if (!found) {
            fmt::print(stderr, "suite: unknown workload '{}' (try --list)\n", argv[i]);
            status = 2;
        }
    }
    return status;
}
