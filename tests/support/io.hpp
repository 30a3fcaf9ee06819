#pragma once
// Test helpers for I/O: every I/O test runs on both backends (and both runtime flavors).

#include <eddy/io_backend.hpp>
#include <eddy/runtime.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>

namespace eddy::test {

struct io_config {
    eddy::io_backend backend;
    bool multi;

    [[nodiscard]] std::string name() const {
        return fmt::format("{} {}", backend, multi ? "multi_thread" : "current_thread");
    }

    [[nodiscard]] eddy::runtime runtime() const {
        auto b = multi ? eddy::runtime::builder::multi_thread().worker_threads(2)
                       : eddy::runtime::builder::current_thread();
        return b.io_backend(backend).build();
    }
};

inline const io_config io_configs[] = {
    {eddy::io_backend::epoll, false},
    {eddy::io_backend::epoll, true},
    {eddy::io_backend::io_uring, false},
    {eddy::io_backend::io_uring, true},
};

} // namespace eddy::test
