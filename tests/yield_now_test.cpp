#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <coroutine>
#include <exception>
#include <stdexcept>
#include <string>

TEST_CASE("yield_now lets the other ready tasks run in turn", "[yield_now]") {
    auto rt = eddy::runtime::builder::current_thread().build();
    std::string trace;
    rt.block_on([](std::string* trace) -> eddy::task<> {
        auto a = eddy::spawn([trace]() -> eddy::task<> {
            for (int i = 0; i < 3; ++i) {
                *trace += 'a';
                co_await eddy::yield_now();
            }
        });
        auto b = eddy::spawn([trace]() -> eddy::task<> {
            for (int i = 0; i < 3; ++i) {
                *trace += 'b';
                co_await eddy::yield_now();
            }
        });
        co_await a;
        co_await b;
    }(&trace));
    CHECK(trace == "ababab");
}

namespace {
// A minimal foreign coroutine type: eager, records its exception.
struct foreign {
    struct promise_type {
        static inline std::exception_ptr error;
        foreign get_return_object() { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() { error = std::current_exception(); }
    };
};
foreign yield_from_foreign() {
    co_await eddy::yield_now();
}
} // namespace

TEST_CASE("yield_now outside a runtime task is a clear error", "[yield_now]") {
    yield_from_foreign();
    REQUIRE(foreign::promise_type::error != nullptr);
    CHECK_THROWS_AS(std::rethrow_exception(foreign::promise_type::error), std::logic_error);
}
