#include <eddy/join.hpp>
#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task_local.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

#include "support/time.hpp"

using namespace std::chrono_literals;

namespace {

eddy::task_local<std::string> request_id;
eddy::task_local<int> depth;

eddy::task<std::string> read_id_after_yields(int n) {
    for (int i = 0; i < n; ++i)
        co_await eddy::yield_now();
    co_return request_id.get();
}

} // namespace

TEST_CASE("task_local is visible inside its scope, across suspensions", "[task_local]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        CHECK(request_id.try_get() == nullptr);
        CHECK_THROWS_AS(request_id.get(), std::logic_error);
        std::string seen = co_await request_id.scope("req-1", []() -> eddy::task<std::string> {
            co_await eddy::sleep(5ms);
            co_return request_id.get();
        }());
        CHECK(seen == "req-1");
        CHECK(request_id.try_get() == nullptr); // not after the scope
    }());
}

TEST_CASE("task_local scopes nest and shadow; spawned tasks do not inherit", "[task_local]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        co_await depth.scope(1, []() -> eddy::task<> {
            CHECK(depth.get() == 1);
            co_await depth.scope(2, []() -> eddy::task<> {
                co_await eddy::yield_now();
                CHECK(depth.get() == 2);
            }());
            CHECK(depth.get() == 1);
            const bool inherited = co_await eddy::spawn(
                []() -> eddy::task<bool> { co_return depth.try_get() != nullptr; }());
            CHECK_FALSE(inherited);
        }());
    }());
}

TEST_CASE("task_local follows tasks across workers", "[task_local]") {
    auto rt = eddy::runtime::builder::multi_thread().worker_threads(2).build();
    std::atomic<int> wrong{0};
    rt.block_on([](std::atomic<int>* wrong) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (int t = 0; t < 20; ++t) {
            hs.push_back(eddy::spawn([](int t, std::atomic<int>* wrong) -> eddy::task<> {
                const std::string id = "task-" + std::to_string(t);
                for (int round = 0; round < 20; ++round) {
                    std::string got = co_await request_id.scope(id, read_id_after_yields(10));
                    if (got != id)
                        wrong->fetch_add(1);
                }
            }(t, wrong)));
        }
        for (auto& h : hs)
            co_await h;
    }(&wrong));
    CHECK(wrong.load() == 0);
}
