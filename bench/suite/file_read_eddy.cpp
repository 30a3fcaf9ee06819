// eddy's readers for the file_read workload (file_read.cpp).

#include "suite/file_read.hpp"

namespace suite::file_read {

const std::vector<reader>& eddy_readers() {
    static const std::vector<reader> readers;
    return readers;
}

} // namespace suite::file_read
