#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/barrier.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace {

using eddy::test::current_thread_rt;
using eddy::test::make_rt;
using eddy::test::settle;

constexpr int max_rounds = 64;

struct round_log {
    std::atomic<int> leaders[max_rounds] = {};
    std::atomic<int> passed[max_rounds] = {};
    std::atomic<int> early = 0; ///< passed a round before everyone arrived (checked at the end)
};

} // namespace

TEST_CASE("barrier releases each round together with exactly one leader", "[barrier]") {
    constexpr int parties = 40; // more than one wake batch
    constexpr int rounds = 20;
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::barrier b(parties);
        round_log log;
        std::atomic<int> in_round{0};
        auto rt = make_rt(flavor != 0);
        rt.block_on(
            [](eddy::barrier* b, round_log* log, std::atomic<int>* in_round) -> eddy::task<> {
                std::vector<eddy::join_handle<void>> hs;
                for (int t = 0; t < parties; ++t) {
                    hs.push_back(eddy::spawn([](eddy::barrier* b, round_log* log,
                                                std::atomic<int>* in_round, int t) -> eddy::task<> {
                        for (int r = 0; r < rounds; ++r) {
                            if ((t + r) % 5 == 0)
                                co_await eddy::yield_now();
                            // Nobody may pass round r before everyone arrived at it.
                            in_round->fetch_add(1);
                            auto res = co_await b->wait();
                            if (in_round->load() < (r + 1) * parties)
                                log->early.fetch_add(1);
                            if (res.is_leader())
                                log->leaders[r].fetch_add(1);
                            log->passed[r].fetch_add(1);
                        }
                    }(b, log, in_round, t)));
                }
                for (auto& h : hs)
                    co_await h;
            }(&b, &log, &in_round));
        CHECK(log.early.load() == 0);
        for (int r = 0; r < rounds; ++r) {
            CHECK(log.leaders[r].load() == 1);
            CHECK(log.passed[r].load() == parties);
        }
    }
}

TEST_CASE("barrier of one releases every wait at once as leader", "[barrier]") {
    eddy::barrier b(1);
    CHECK(b.parties() == 1);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::barrier* b) -> eddy::task<> {
        for (int i = 0; i < 300; ++i) { // beyond one poll's budget
            const auto r = co_await b->wait();
            CHECK(r.is_leader());
        }
    }(&b));
}

TEST_CASE("barrier: a wait cancelled before its round completes withdraws its arrival",
          "[barrier]") {
    eddy::barrier b(3);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::barrier* b) -> eddy::task<> {
        int passed = 0;
        auto waiter = [](eddy::barrier* b, int* passed) -> eddy::task<> {
            co_await b->wait();
            ++*passed;
        };
        auto a = eddy::spawn(waiter(b, &passed));
        auto cancelled = eddy::spawn(waiter(b, &passed));
        co_await settle();
        bool threw = co_await eddy::test::abort_and_join(cancelled);
        CHECK(threw);
        // Two live arrivals (a and c) are not enough once the cancelled one is withdrawn.
        auto c = eddy::spawn(waiter(b, &passed));
        co_await settle();
        CHECK(passed == 0);
        auto leader = co_await b->wait(); // the third live arrival completes the round
        CHECK(leader.is_leader());
        co_await a;
        co_await c;
        CHECK(passed == 2);
    }(&b));
}

TEST_CASE("barrier: a wait cancelled after its round completed changes nothing", "[barrier]") {
    eddy::barrier b(2);
    auto rt = current_thread_rt();
    rt.block_on([](eddy::barrier* b) -> eddy::task<> {
        auto released = eddy::spawn([](eddy::barrier* b) -> eddy::task<> {
            co_await b->wait();
            FAIL("resumed after abort");
        }(b));
        co_await settle();
        auto r = co_await b->wait(); // completes the round, wakes `released`
        CHECK(r.is_leader());
        bool threw = co_await eddy::test::abort_and_join(released); // before it resumes
        CHECK(threw);
        // The next round starts from zero arrivals.
        int passed = 0;
        auto next = eddy::spawn([](eddy::barrier* b, int* passed) -> eddy::task<> {
            co_await b->wait();
            ++*passed;
        }(b, &passed));
        co_await settle();
        CHECK(passed == 0);
        auto r2 = co_await b->wait();
        CHECK(r2.is_leader());
        co_await next;
        CHECK(passed == 1);
    }(&b));
}

TEST_CASE("barrier: shutting the runtime down with waiters frees them", "[barrier]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        auto b = std::make_shared<eddy::barrier>(10);
        {
            auto rt = make_rt(flavor != 0);
            rt.block_on([](std::shared_ptr<eddy::barrier> b) -> eddy::task<> {
                for (int i = 0; i < 5; ++i) {
                    eddy::spawn([](std::shared_ptr<eddy::barrier> b) -> eddy::task<> {
                        co_await b->wait();
                    }(b))
                        .detach();
                }
                co_await settle();
            }(b));
        }
        CHECK(b.use_count() == 1);
    }
}
