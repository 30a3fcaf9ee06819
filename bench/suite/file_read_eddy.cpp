// eddy's readers for the file_read workload (file_read.cpp), one per io backend:
//
//   eddy-epoll  files on the blocking pool (regular files are always "ready" to epoll)
//   eddy-uring  native io_uring opens, reads and closes
//
// Both run the same program: a multi-thread runtime with 2 workers, 64 tasks each taking the next
// file until none is left (so at most 64 files are open at once), each reading it whole with
// eddy::fs::read_file (as tokio::fs::read would: open, size, read to end of file, close).

#include <eddy/fs.hpp>
#include <eddy/io_backend.hpp>
#include <eddy/join_set.hpp>
#include <eddy/runtime.hpp>
#include <eddy/task.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "suite/file_read.hpp"
#include "suite/suite.hpp"

namespace suite::file_read {

namespace {

eddy::task<std::size_t> reader_task(const std::vector<std::string>* paths,
                                    std::atomic<std::size_t>* next) {
    std::size_t total = 0;
    for (std::size_t i = next->fetch_add(1); i < paths->size(); i = next->fetch_add(1)) {
        auto contents = co_await eddy::fs::read_file((*paths)[i]);
        if (!contents)
            throw std::system_error(contents.error(), "read_file " + (*paths)[i]);
        total += contents->size();
    }
    co_return total;
}

eddy::task<double> read_all(const file_set& files) {
    std::atomic<std::size_t> next{0};
    const auto start = clock::now();
    eddy::join_set<std::size_t> readers;
    for (int i = 0; i < max_in_flight; ++i)
        readers.spawn(reader_task(&files.paths(), &next));
    std::size_t total = 0;
    for (;;) {
        auto done = co_await readers.join_next();
        if (!done)
            break;
        total += done->take();
    }
    const double ns = elapsed_ns(start);
    check_total("eddy", total);
    co_return ns;
}

double measure(const file_set& files, eddy::io_backend backend) {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).io_backend(backend).build();
    return median_ns([&] { return rt.block_on(read_all(files)); });
}

} // namespace

const std::vector<reader>& eddy_readers() {
    static const std::vector<reader> readers{
        {"eddy-epoll", [](const file_set& f) { return measure(f, eddy::io_backend::epoll); }},
        {"eddy-uring", [](const file_set& f) { return measure(f, eddy::io_backend::io_uring); }},
    };
    return readers;
}

} // namespace suite::file_read
