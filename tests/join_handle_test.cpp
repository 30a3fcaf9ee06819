#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "support/manual_event.hpp"
#include "support/throws.hpp"

using eddy::test::drop_counter;
using eddy::test::manual_event;

namespace {

auto make_rt() {
    return eddy::runtime::builder::current_thread().build();
}

eddy::task<int> level3() {
    throw std::invalid_argument("deep failure");
    co_return 0;
}
eddy::task<int> level2() {
    co_return co_await level3();
}
eddy::task<int> level1() {
    co_return co_await level2();
}

} // namespace

TEST_CASE("join handle yields the task's value", "[join_handle]") {
    auto rt = make_rt();
    int v = rt.block_on([]() -> eddy::task<int> {
        auto h = eddy::spawn([]() -> eddy::task<int> { co_return 41; });
        co_return co_await h + 1;
    }());
    CHECK(v == 42);
}

TEST_CASE("an exception thrown three levels down reaches the joiner", "[join_handle]") {
    auto rt = make_rt();
    auto body = []() -> eddy::task<std::string> {
        auto h = eddy::spawn(level1());
        try {
            co_await h;
        } catch (const std::invalid_argument& e) {
            co_return e.what();
        }
        co_return "nothing thrown";
    };
    CHECK(rt.block_on(body()) == "deep failure");
}

TEST_CASE("abort of a task suspended at a yield destroys its frame", "[join_handle]") {
    auto rt = make_rt();
    int drops = 0;
    int steps = 0;
    auto body = [](int* drops, int* steps) -> eddy::task<bool> {
        auto h = eddy::spawn([](drop_counter d, int* steps) -> eddy::task<> {
            (void)d;
            for (;;) {
                ++*steps;
                co_await eddy::yield_now();
            }
        }(drop_counter(drops), steps));
        co_await eddy::yield_now(); // let it start and yield
        CHECK(*steps >= 1);
        h.abort();
        try {
            co_await h;
        } catch (const eddy::join_error& e) {
            CHECK(e.is_cancelled());
            CHECK(e.code() == eddy::errc::cancelled);
            co_return true;
        }
        co_return false;
    };
    CHECK(rt.block_on(body(&drops, &steps)));
    CHECK(drops == 1);
    const int at_abort = steps;
    rt.block_on(eddy::yield_now());
    CHECK(steps == at_abort); // never polled again
}

TEST_CASE("abort of a task suspended on an event withdraws its waker", "[join_handle]") {
    auto rt = make_rt();
    manual_event ev;
    rt.block_on([](manual_event& ev) -> eddy::task<> {
        auto h = eddy::spawn([&ev]() -> eddy::task<> { co_await ev.wait(); });
        co_await eddy::yield_now();
        CHECK(ev.waiting() == 1);
        h.abort();
        bool threw1 = co_await eddy::test::throws_as<eddy::join_error>(h);
        CHECK(threw1);
        CHECK(ev.waiting() == 0);
    }(ev));
    ev.set(); // nobody left to wake
}

TEST_CASE("abort before the first poll cancels without running", "[join_handle]") {
    auto rt = make_rt();
    bool ran = false;
    rt.block_on([](bool* ran) -> eddy::task<> {
        auto h = eddy::spawn([ran]() -> eddy::task<> {
            *ran = true;
            co_return;
        });
        h.abort();
        h.abort(); // idempotent
        bool threw2 = co_await eddy::test::throws_as<eddy::join_error>(h);
        CHECK(threw2);
    }(&ran));
    CHECK_FALSE(ran);
}

TEST_CASE("abort of a finished task has no effect", "[join_handle]") {
    auto rt = make_rt();
    int v = rt.block_on([]() -> eddy::task<int> {
        auto h = eddy::spawn([]() -> eddy::task<int> { co_return 5; });
        while (!h.is_finished())
            co_await eddy::yield_now();
        h.abort();
        co_return co_await h;
    }());
    CHECK(v == 5);
}

TEST_CASE("a task can abort itself through its own handle", "[join_handle]") {
    auto rt = make_rt();
    int drops = 0;
    rt.block_on([](int* drops) -> eddy::task<> {
        auto self = std::make_shared<eddy::join_handle<void>>();
        auto h = eddy::spawn(
            [](std::shared_ptr<eddy::join_handle<void>> me, drop_counter d) -> eddy::task<> {
                (void)d;
                me->abort();
                co_await eddy::yield_now();
                FAIL("ran past its own abort");
            }(self, drop_counter(drops)));
        *self = std::move(h);
        bool threw3 = co_await eddy::test::throws_as<eddy::join_error>(*self);
        CHECK(threw3);
    }(&drops));
    CHECK(drops == 1);
}

TEST_CASE("join handle dropped before completion detaches the task", "[join_handle]") {
    auto rt = make_rt();
    manual_event ev;
    int done = 0;
    rt.block_on([](manual_event& ev, int* done) -> eddy::task<> {
        {
            auto h = eddy::spawn([](manual_event& ev, int* done) -> eddy::task<> {
                co_await ev.wait();
                ++*done;
            }(ev, done));
            co_await eddy::yield_now();
        } // dropped while suspended
        ev.set();
        while (*done == 0)
            co_await eddy::yield_now();
    }(ev, &done));
    CHECK(done == 1);
}

TEST_CASE("join handle dropped after completion frees the task", "[join_handle]") {
    auto rt = make_rt();
    int drops = 0;
    rt.block_on([](int* drops) -> eddy::task<> {
        auto h = eddy::spawn([](drop_counter d) -> eddy::task<int> {
            (void)d;
            co_return 1;
        }(drop_counter(drops)));
        while (!h.is_finished())
            co_await eddy::yield_now();
        CHECK(*drops == 0); // the output (and the frame) live until the handle goes
        h.detach();
        CHECK(*drops == 1);
    }(&drops));
}

TEST_CASE("awaiting a join handle twice is an error", "[join_handle]") {
    auto rt = make_rt();
    rt.block_on([]() -> eddy::task<> {
        auto h = eddy::spawn([]() -> eddy::task<int> { co_return 1; });
        int first = co_await h;
        CHECK(first == 1);
        try {
            co_await h;
            FAIL("second join did not throw");
        } catch (const eddy::join_error& e) {
            CHECK(e.code() == eddy::errc::already_taken);
        }
        eddy::join_handle<int> empty;
        bool threw4 = co_await eddy::test::throws_as<std::logic_error>(empty);
        CHECK(threw4);
    }());
}

TEST_CASE("a joiner that is cancelled while waiting leaves the joined task running",
          "[join_handle]") {
    auto rt = make_rt();
    manual_event ev;
    int finished = 0;
    rt.block_on([](manual_event& ev, int* finished) -> eddy::task<> {
        auto worker = std::make_shared<eddy::join_handle<int>>(
            eddy::spawn([](manual_event& ev, int* finished) -> eddy::task<int> {
                co_await ev.wait();
                ++*finished;
                co_return 3;
            }(ev, finished)));
        auto joiner = eddy::spawn([](std::shared_ptr<eddy::join_handle<int>> w) -> eddy::task<int> {
            co_return co_await *w;
        }(worker));
        co_await eddy::yield_now();
        joiner.abort();
        bool threw5 = co_await eddy::test::throws_as<eddy::join_error>(joiner);
        CHECK(threw5);
        ev.set();
        int result = co_await *worker;
        CHECK(result == 3);
    }(ev, &finished));
    CHECK(finished == 1);
}

TEST_CASE("task ids are unique and non-zero", "[join_handle]") {
    auto rt = make_rt();
    rt.block_on([]() -> eddy::task<> {
        auto a = eddy::spawn([]() -> eddy::task<> { co_return; });
        auto b = eddy::spawn([]() -> eddy::task<> { co_return; });
        CHECK(a.id().value != 0);
        CHECK(a.id() != b.id());
        co_await a;
        co_await b;
    }());
}
