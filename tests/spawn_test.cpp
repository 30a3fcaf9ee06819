#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <vector>

#include "support/throws.hpp"

namespace {
auto make_rt() {
    return eddy::runtime::builder::current_thread().build();
}
} // namespace

TEST_CASE("100,000 spawned tasks each run exactly once", "[spawn]") {
    constexpr int n = 100'000;
    auto rt = make_rt();
    std::vector<int> runs(n, 0);
    rt.block_on([](std::vector<int>& runs) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> handles;
        handles.reserve(runs.size());
        for (std::size_t i = 0; i < runs.size(); ++i) {
            handles.push_back(eddy::spawn([](int* slot) -> eddy::task<> {
                ++*slot;
                co_return;
            }(&runs[i])));
        }
        for (auto& h : handles)
            co_await h;
    }(runs));
    for (int r : runs)
        REQUIRE(r == 1);
}

TEST_CASE("detached tasks still run to completion", "[spawn]") {
    auto rt = make_rt();
    int count = 0;
    rt.block_on([](int* count) -> eddy::task<> {
        for (int i = 0; i < 1000; ++i) {
            eddy::spawn([](int* c) -> eddy::task<> {
                co_await eddy::yield_now();
                ++*c;
            }(count))
                .detach();
        }
        while (*count < 1000)
            co_await eddy::yield_now();
    }(&count));
    CHECK(count == 1000);
}

TEST_CASE("spawn accepts awaitables and callables, keeping captures alive", "[spawn]") {
    auto rt = make_rt();
    int v = rt.block_on([]() -> eddy::task<int> {
        auto shared = std::make_shared<int>(20);
        // The callable form keeps the lambda (and its captures) inside the task.
        auto a = eddy::spawn([shared]() -> eddy::task<int> {
            co_await eddy::yield_now();
            co_return *shared + 1;
        });
        shared.reset();
        // A non-task awaitable is wrapped.
        auto b = eddy::spawn(eddy::yield_now());
        co_await b;
        co_return co_await a + 21;
    }());
    CHECK(v == 42);
}

TEST_CASE("spawn outside a runtime is a clear error", "[spawn]") {
    auto make = []() -> eddy::task<> { co_return; };
    CHECK_THROWS_AS(eddy::spawn(make()), std::logic_error);
    CHECK_THROWS_WITH(eddy::spawn(make()), Catch::Contains("eddy::spawn must be called"));
}

TEST_CASE("a detached task's exception goes to the runtime hook", "[spawn]") {
    std::vector<std::uint64_t> reported;
    std::string what;
    auto rt = eddy::runtime::builder::current_thread()
                  .unhandled_exception([&](eddy::task_id id, std::exception_ptr e) {
                      reported.push_back(id.value);
                      what = eddy::unhandled_exception_hooks::describe(e);
                  })
                  .build();
    std::uint64_t id = rt.block_on([]() -> eddy::task<std::uint64_t> {
        auto h = eddy::spawn([]() -> eddy::task<> {
            co_await eddy::yield_now();
            throw std::runtime_error("nobody listens");
        });
        auto id = h.id().value;
        h.detach();
        for (int i = 0; i < 4; ++i)
            co_await eddy::yield_now();
        co_return id;
    }());
    REQUIRE(reported.size() == 1);
    CHECK(reported[0] == id);
    CHECK_THAT(what, Catch::Contains("nobody listens"));
}

TEST_CASE("a joined task's exception does not reach the hook", "[spawn]") {
    int hook_calls = 0;
    auto rt = eddy::runtime::builder::current_thread()
                  .unhandled_exception([&](eddy::task_id, std::exception_ptr) { ++hook_calls; })
                  .build();
    rt.block_on([]() -> eddy::task<> {
        auto h = eddy::spawn([]() -> eddy::task<> {
            throw std::runtime_error("joined");
            co_return;
        });
        bool threw1 = co_await eddy::test::throws_as<std::runtime_error>(h);
        CHECK(threw1);
    }());
    CHECK(hook_calls == 0);
}
