#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/rw_lock.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace {

using eddy::test::current_thread_rt;
using eddy::test::make_rt;
using eddy::test::multi_thread_rt;
using eddy::test::settle;

using rw = eddy::rw_lock<int>;

} // namespace

TEST_CASE("rw_lock admits many readers or one writer", "[rw_lock]") {
    rw l(5);
    auto rt = current_thread_rt();
    rt.block_on([](rw* l) -> eddy::task<> {
        {
            auto r1 = co_await l->read();
            auto r2 = co_await l->read();
            auto r3 = l->try_read();
            REQUIRE(r3);
            CHECK(*r1 + *r2 + **r3 == 15);
            CHECK_FALSE(l->try_write());
        }
        {
            auto w = co_await l->write();
            *w = 7;
            CHECK_FALSE(l->try_read());
            CHECK_FALSE(l->try_write());
        }
        auto r = l->try_read();
        REQUIRE(r);
        CHECK(**r == 7);
    }(&l));
    CHECK(l.get_mut() == 7);
    CHECK_THROWS_AS(rw(0, 0), std::logic_error);
}

TEST_CASE("rw_lock: a waiting writer blocks later readers, which then enter together",
          "[rw_lock]") {
    rw l(0);
    auto rt = current_thread_rt();
    rt.block_on([](rw* l) -> eddy::task<> {
        std::vector<std::string> log;
        auto first_reader = co_await l->read();
        auto writer = eddy::spawn([](rw* l, std::vector<std::string>* log) -> eddy::task<> {
            auto w = co_await l->write();
            *w = 1;
            log->push_back("w");
        }(l, &log));
        co_await settle();
        CHECK_FALSE(l->try_read()); // the queued writer goes first
        std::vector<eddy::join_handle<void>> readers;
        int inside = 0;
        int max_inside = 0;
        for (int i = 0; i < 3; ++i) {
            readers.push_back(eddy::spawn([](rw* l, std::vector<std::string>* log, int* inside,
                                             int* max_inside) -> eddy::task<> {
                auto r = co_await l->read();
                log->push_back("r" + std::to_string(*r));
                ++*inside;
                *max_inside = std::max(*max_inside, *inside);
                co_await eddy::yield_now();
                --*inside;
            }(l, &log, &inside, &max_inside)));
        }
        co_await settle();
        CHECK(log.empty());
        first_reader.unlock();
        co_await writer;
        for (auto& h : readers)
            co_await h;
        CHECK(log == std::vector<std::string>{"w", "r1", "r1", "r1"});
        CHECK(max_inside == 3);
    }(&l));
}

TEST_CASE("rw_lock caps concurrent readers at max_readers", "[rw_lock]") {
    rw l(0, 2);
    CHECK(l.max_readers() == 2);
    auto rt = current_thread_rt();
    rt.block_on([](rw* l) -> eddy::task<> {
        auto a = co_await l->read();
        auto b = co_await l->read();
        CHECK_FALSE(l->try_read());
        bool third_in = false;
        auto third = eddy::spawn([](rw* l, bool* in) -> eddy::task<> {
            auto r = co_await l->read();
            *in = true;
        }(l, &third_in));
        co_await settle();
        CHECK_FALSE(third_in);
        a.unlock();
        co_await third;
        CHECK(third_in);
    }(&l));
}

TEST_CASE("rw_lock: a cancelled writer gives back the reader slots it had gathered", "[rw_lock]") {
    rw l(0, 4);
    auto rt = current_thread_rt();
    rt.block_on([](rw* l) -> eddy::task<> {
        auto reader = co_await l->read();
        auto writer = eddy::spawn([](rw* l) -> eddy::task<> {
            auto w = co_await l->write(); // takes the 3 free slots, waits for the 4th
            *w = -1;
        }(l));
        co_await settle();
        bool late_in = false;
        auto late_reader = eddy::spawn([](rw* l, bool* in) -> eddy::task<> {
            auto r = co_await l->read();
            *in = true;
        }(l, &late_in));
        co_await settle();
        CHECK_FALSE(late_in);
        bool threw = co_await eddy::test::abort_and_join(writer);
        CHECK(threw);
        co_await late_reader;
        CHECK(late_in);
        reader.unlock();
        auto w = l->try_write();
        REQUIRE(w);
        CHECK(**w == 0);
    }(&l));
}

TEST_CASE("rw_lock: a writer cancelled after the hand-off lets the readers behind it in",
          "[rw_lock]") {
    rw l(0);
    auto rt = current_thread_rt();
    rt.block_on([](rw* l) -> eddy::task<> {
        auto w0 = co_await l->write();
        auto writer = eddy::spawn([](rw* l) -> eddy::task<> {
            auto w = co_await l->write();
            *w = -1;
        }(l));
        co_await settle();
        auto reader = eddy::spawn([](rw* l) -> eddy::task<int> {
            auto r = co_await l->read();
            co_return *r;
        }(l));
        co_await settle();
        *w0 = 3;
        w0.unlock(); // handed to `writer`
        bool threw = co_await eddy::test::abort_and_join(writer);
        CHECK(threw);
        int seen = co_await reader;
        CHECK(seen == 3);
        CHECK(l->try_write());
    }(&l));
}

TEST_CASE("rw_lock downgrade keeps writers out and lets readers in", "[rw_lock]") {
    rw l(0);
    auto rt = current_thread_rt();
    rt.block_on([](rw* l) -> eddy::task<> {
        auto w = co_await l->write();
        *w = 42;
        auto r = eddy::rw_lock_write_guard<int>::downgrade(std::move(w));
        CHECK(*r == 42);
        CHECK_FALSE(l->try_write());
        auto r2 = l->try_read();
        REQUIRE(r2);
        r.unlock();
        r2->unlock();
        CHECK(l->try_write());
    }(&l));
}

TEST_CASE("rw_lock: readers always see a consistent value under concurrent writers", "[rw_lock]") {
    eddy::rw_lock<std::pair<long, long>> l({0, 0});
    std::atomic<long> reads{0};
    auto rt = multi_thread_rt();
    rt.block_on([](eddy::rw_lock<std::pair<long, long>>* l,
                   std::atomic<long>* reads) -> eddy::task<> {
        std::vector<eddy::join_handle<void>> hs;
        for (int t = 0; t < 4; ++t) {
            hs.push_back(eddy::spawn([](eddy::rw_lock<std::pair<long, long>>* l) -> eddy::task<> {
                for (int i = 0; i < 300; ++i) {
                    auto w = co_await l->write();
                    ++w->first;
                    if (i % 8 == 0)
                        co_await eddy::yield_now();
                    ++w->second;
                }
            }(l)));
        }
        for (int t = 0; t < 6; ++t) {
            hs.push_back(eddy::spawn([](eddy::rw_lock<std::pair<long, long>>* l,
                                        std::atomic<long>* reads) -> eddy::task<> {
                for (int i = 0; i < 300; ++i) {
                    auto r = co_await l->read();
                    if (r->first == r->second) // no Catch macros off the main thread
                        reads->fetch_add(1);
                    if (i % 8 == 0)
                        co_await eddy::yield_now();
                }
            }(l, reads)));
        }
        for (auto& h : hs)
            co_await h;
    }(&l, &reads));
    CHECK(l.get_mut() == std::pair<long, long>{1200, 1200});
    CHECK(reads.load() == 1800);
}

TEST_CASE("rw_lock blocking access from a plain thread", "[rw_lock]") {
    rw l(0);
    int plain_saw = 0;
    auto rt = multi_thread_rt();
    std::thread plain([&l, &plain_saw] {
        for (int i = 0; i < 500; ++i) {
            auto w = l.blocking_write();
            ++*w;
        }
        auto r = l.blocking_read();
        plain_saw = *r;
    });
    rt.block_on([](rw* l) -> eddy::task<> {
        for (int i = 0; i < 500; ++i) {
            auto w = co_await l->write();
            ++*w;
        }
    }(&l));
    plain.join();
    CHECK(plain_saw >= 500);
    CHECK(l.get_mut() == 1000);
}

TEST_CASE("rw_lock: shutting the runtime down with waiters frees them", "[rw_lock]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        rw l(0, 8);
        {
            auto rt = make_rt(flavor != 0);
            rt.block_on([](rw* l) -> eddy::task<> {
                auto r = co_await l->read();
                for (int i = 0; i < 6; ++i) {
                    eddy::spawn([](rw* l, int i) -> eddy::task<> {
                        if (i % 2 == 0) {
                            auto w = co_await l->write();
                            co_await eddy::yield_now();
                        } else {
                            auto g = co_await l->read();
                            co_await eddy::yield_now();
                        }
                    }(l, i))
                        .detach();
                }
                co_await settle();
            }(&l));
        }
        CHECK(l.try_write());
    }
}
