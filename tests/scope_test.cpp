// eddy::scope: children borrowing the parent's locals, failures under both policies, the parent
// leaving early (cancelled in join, cancelled elsewhere, an exception, a lost select), spawns from
// children during join, nested scopes, many children, on both runtime flavors. Run these under
// AddressSanitizer too: a child touching a borrowed local after its owner's frame was freed is a
// heap-use-after-free there.

#include <eddy/join_handle.hpp>
#include <eddy/result.hpp>
#include <eddy/runtime.hpp>
#include <eddy/scope.hpp>
#include <eddy/select.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/manual_event.hpp"
#include "support/runtimes.hpp"
#include "support/threads.hpp"
#include "support/throws.hpp"
#include "support/time.hpp"

using namespace std::chrono_literals;
using eddy::test::atomic_drop_counter;
using eddy::test::drop_counter;
using eddy::test::manual_event;

namespace {

/// Sleeps "forever" holding a drop counter: its count proves the frame was destroyed.
eddy::task<> sleeps_forever(atomic_drop_counter c) {
    const atomic_drop_counter held = std::move(c);
    co_await eddy::sleep(24h);
}

eddy::task<> throws_after(std::chrono::milliseconds d) {
    co_await eddy::sleep(d);
    throw std::runtime_error("child failed");
}

eddy::task<eddy::result<void>> errs_after(std::chrono::milliseconds d) {
    co_await eddy::sleep(d);
    co_return eddy::errc::closed;
}

/// Writes into a borrowed array for as long as it lives: a few microseconds of writes per poll,
/// then a yield, so that on two workers it is often in the middle of a poll when its owner is
/// cancelled (the destructor then waits for that poll to end).
eddy::task<> scribbles(int* borrowed, std::size_t n, std::atomic<int>* started,
                       atomic_drop_counter c) {
    const atomic_drop_counter held = std::move(c);
    volatile int* out = borrowed; // every store happens (and is checked by ASan)
    started->fetch_add(1);
    for (unsigned round = 0;; ++round) {
        for (unsigned pass = 0; pass < 64; ++pass) {
            for (std::size_t k = 0; k < n; ++k)
                out[k] = static_cast<int>(round + pass + k);
        }
        co_await eddy::yield_now();
    }
}

/// A child that spawns two more into the same scope (by reference), down to depth 0.
eddy::task<> spawn_tree(eddy::scope* s, int depth, std::atomic<int>* count) {
    count->fetch_add(1);
    co_await eddy::yield_now();
    if (depth > 0) {
        s->spawn(spawn_tree(s, depth - 1, count));
        s->spawn(spawn_tree(s, depth - 1, count));
    }
}

} // namespace

TEST_CASE("scope children borrow the parent's locals", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        std::vector<int> squares(100, -1);
        eddy::scope s;
        CHECK(s.empty());
        for (std::size_t i = 0; i < squares.size(); ++i) {
            s.spawn([&squares, i]() -> eddy::task<> {
                co_await eddy::yield_now();
                squares[i] = static_cast<int>(i * i);
            });
        }
        auto r = co_await s.join();
        CHECK(r.has_value());
        CHECK(s.empty());
        for (std::size_t i = 0; i < squares.size(); ++i)
            CHECK(squares[i] == static_cast<int>(i * i));
    }());
}

TEST_CASE("join on an empty scope returns at once", "[scope]") {
    auto rt = eddy::test::current_thread_rt();
    rt.block_on([]() -> eddy::task<> {
        eddy::scope s;
        auto r = co_await s.join();
        CHECK(r.has_value());
        // And again, after children came and went.
        s.spawn([]() -> eddy::task<> { co_return; });
        auto r2 = co_await s.join();
        CHECK(r2.has_value());
        auto r3 = co_await s.join();
        CHECK(r3.has_value());
    }());
}

TEST_CASE("wait_all: a failure leaves the siblings running; join rethrows it after all finished",
          "[scope]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        bool sibling_done = false;
        eddy::scope s;
        CHECK(s.policy() == eddy::scope_policy::wait_all);
        s.spawn(throws_after(1ms));
        s.spawn([&sibling_done]() -> eddy::task<> {
            co_await eddy::sleep(50ms);
            sibling_done = true;
        });
        s.spawn(throws_after(2ms)); // a later failure: dropped
        const eddy::instant start = eddy::clock::now();
        bool threw = co_await eddy::test::throws_as<std::runtime_error>(s.join());
        CHECK(threw);
        CHECK(sibling_done);
        CHECK(eddy::clock::now() - start == 50ms);
        // Reported once: the next join is clean.
        auto again = co_await s.join();
        CHECK(again.has_value());
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("wait_all: a child returning an error result is reported by join", "[scope]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        eddy::scope s;
        s.spawn(errs_after(1ms));
        s.spawn(eddy::sleep(10ms));
        s.spawn([]() -> eddy::task<eddy::result<int>> { co_return 7; }); // a value: not a failure
        s.spawn([]() -> eddy::task<int> { co_return 8; });               // dropped
        auto r = co_await s.join();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == eddy::errc::closed);
    }());
}

TEST_CASE("cancel_on_failure: the first failure cancels the siblings", "[scope]") {
    const bool use_exception = GENERATE(true, false);
    INFO((use_exception ? "exception" : "error result"));
    auto rt = eddy::test::paused_runtime();
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops, bool use_exception) -> eddy::task<> {
        eddy::scope s(eddy::scope_policy::cancel_on_failure);
        for (int i = 0; i < 10; ++i)
            s.spawn(sleeps_forever(atomic_drop_counter(drops)));
        if (use_exception) {
            s.spawn(throws_after(5ms));
        } else {
            s.spawn(errs_after(5ms));
        }
        const eddy::instant start = eddy::clock::now();
        if (use_exception) {
            bool threw = co_await eddy::test::throws_as<std::runtime_error>(s.join());
            CHECK(threw);
        } else {
            auto r = co_await s.join();
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error() == eddy::errc::closed);
        }
        CHECK(eddy::clock::now() - start == 5ms);
        CHECK(drops->load() == 10);
        CHECK(s.empty());
    }(&drops, use_exception));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("cancel_on_failure cancels siblings before the owner reaches join", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
        eddy::scope s(eddy::scope_policy::cancel_on_failure);
        for (int i = 0; i < 50; ++i)
            s.spawn(sleeps_forever(atomic_drop_counter(drops)));
        s.spawn([]() -> eddy::task<> {
            co_await eddy::yield_now();
            throw std::runtime_error("child failed");
        });
        // The owner is busy elsewhere; the siblings go anyway.
        while (drops->load() < 50)
            co_await eddy::yield_now();
        // Children spawned before the join reports the failure start cancelled.
        s.spawn(sleeps_forever(atomic_drop_counter(drops)));
        bool threw = co_await eddy::test::throws_as<std::runtime_error>(s.join());
        CHECK(threw);
        CHECK(drops->load() == 51);
        // After the join the scope is usable again.
        int ran = 0;
        s.spawn([&ran]() -> eddy::task<> {
            ++ran;
            co_return;
        });
        auto r = co_await s.join();
        CHECK(r.has_value());
        CHECK(ran == 1);
    }(&drops));
}

TEST_CASE("scope::cancel cancels every child; join then reports success", "[scope]") {
    auto rt = eddy::test::paused_runtime();
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
        eddy::scope s;
        for (int i = 0; i < 5; ++i)
            s.spawn(sleeps_forever(atomic_drop_counter(drops)));
        co_await eddy::test::settle();
        CHECK(s.size() == 5);
        s.cancel();
        auto r = co_await s.join();
        CHECK(r.has_value());
        CHECK(drops->load() == 5);
    }(&drops));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("a parent aborted in join: its children are gone before its frame is freed", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        for (int rep = 0; rep < 50; ++rep) {
            std::atomic<int> drops{0};
            std::atomic<int> started{0};
            constexpr int children = 8;
            auto parent =
                eddy::spawn([](std::atomic<int>* drops, std::atomic<int>* started) -> eddy::task<> {
                    std::vector<int> heap_local(256, 0);
                    std::array<int, 64> frame_local{};
                    eddy::scope s;
                    // Each child writes its own slice of the heap local or of the frame local.
                    for (int i = 0; i < children; ++i) {
                        const auto slice = static_cast<std::size_t>(i / 2);
                        if (i % 2 == 0) {
                            s.spawn(scribbles(heap_local.data() + slice * 64, 64, started,
                                              atomic_drop_counter(drops)));
                        } else {
                            s.spawn(scribbles(frame_local.data() + slice * 16, 16, started,
                                              atomic_drop_counter(drops)));
                        }
                    }
                    s.spawn(sleeps_forever(atomic_drop_counter(drops)));
                    static_cast<void>(co_await s.join());
                }(&drops, &started));
            while (started.load() < children)
                co_await eddy::yield_now();
            const bool cancelled = co_await eddy::test::abort_and_join(parent);
            CHECK(cancelled);
            // The abort completed only after every child's frame was destroyed.
            CHECK(drops.load() == children + 1);
        }
    }());
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("cancelling a parent waits for a child's poll running on the other worker", "[scope]") {
    auto rt = eddy::test::multi_thread_rt();
    rt.block_on([]() -> eddy::task<> {
        std::atomic<bool> in_poll{false};
        std::atomic<bool> release{false};
        std::atomic<int> drops{0};
        // Ends the child's one long poll a little later, from outside the runtime.
        std::thread releaser([&release] {
            std::this_thread::sleep_for(10ms);
            release.store(true);
        });
        auto parent = eddy::spawn([](std::atomic<bool>* in_poll, std::atomic<bool>* release,
                                     std::atomic<int>* drops) -> eddy::task<> {
            std::vector<int> borrowed(64, 0);
            eddy::scope s;
            s.spawn([](int* b, std::atomic<bool>* in_poll, std::atomic<bool>* release,
                       atomic_drop_counter c) -> eddy::task<> {
                const atomic_drop_counter held = std::move(c);
                in_poll->store(true);
                volatile int* out = b;
                for (unsigned i = 0; !release->load(); ++i)
                    out[i % 64] = static_cast<int>(i);
                co_await eddy::yield_now();
                co_await eddy::sleep(24h);
            }(borrowed.data(), in_poll, release, atomic_drop_counter(drops)));
            static_cast<void>(co_await s.join());
        }(&in_poll, &release, &drops));
        while (!in_poll.load())
            co_await eddy::yield_now();
        // The parent is cancelled on this worker while the child is inside its poll on the
        // other one: the abort completes only after that poll ended and the child was reaped.
        const bool cancelled = co_await eddy::test::abort_and_join(parent);
        const bool released = release.load();
        releaser.join();
        CHECK(cancelled);
        CHECK(released);
        CHECK(drops.load() == 1);
    }());
}

TEST_CASE("a parent aborted while not in join cancels its children too", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        std::atomic<int> drops{0};
        std::atomic<int> started{0};
        manual_event never;
        auto parent = eddy::spawn([](std::atomic<int>* drops, std::atomic<int>* started,
                                     manual_event* never) -> eddy::task<> {
            std::vector<int> borrowed(128, 0);
            eddy::scope s;
            for (std::size_t i = 0; i < 4; ++i)
                s.spawn(
                    scribbles(borrowed.data() + i * 32, 32, started, atomic_drop_counter(drops)));
            co_await never->wait(); // cancelled here, before any join
            static_cast<void>(co_await s.join());
        }(&drops, &started, &never));
        while (started.load() < 4)
            co_await eddy::yield_now();
        const bool cancelled = co_await eddy::test::abort_and_join(parent);
        CHECK(cancelled);
        CHECK(drops.load() == 4);
    }());
}

TEST_CASE("an exception leaving the scope cancels the children and propagates", "[scope]") {
    auto rt = eddy::test::paused_runtime();
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
        auto leaves_by_exception = [](std::atomic<int>* drops) -> eddy::task<> {
            std::vector<int> borrowed(16, 0);
            eddy::scope s;
            for (int i = 0; i < 3; ++i)
                s.spawn(sleeps_forever(atomic_drop_counter(drops)));
            co_await eddy::test::settle();
            throw std::logic_error("the parent gave up");
        };
        bool threw = co_await eddy::test::throws_as<std::logic_error>(leaves_by_exception(drops));
        CHECK(threw);
        CHECK(drops->load() == 3);
    }(&drops));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("a scope inside an operation that loses a timeout is cancelled with it", "[scope]") {
    auto rt = eddy::test::paused_runtime();
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
        auto op = [](std::atomic<int>* drops) -> eddy::task<> {
            eddy::scope s;
            for (int i = 0; i < 3; ++i)
                s.spawn(sleeps_forever(atomic_drop_counter(drops)));
            static_cast<void>(co_await s.join());
        };
        auto r = co_await eddy::timeout(5ms, op(drops));
        CHECK_FALSE(r.has_value());
        CHECK(drops->load() == 3);
    }(&drops));
    CHECK(eddy::test::active_timers(rt) == 0);
}

TEST_CASE("join is cancel-safe: a join that loses a select leaves the scope intact", "[scope]") {
    auto rt = eddy::test::paused_runtime();
    rt.block_on([]() -> eddy::task<> {
        eddy::scope s;
        s.spawn(throws_after(1ms));
        s.spawn(eddy::sleep(20ms));
        auto first = co_await eddy::select(s.join(), eddy::sleep(10ms));
        CHECK(first.index() == 1);
        CHECK(s.size() == 1);
        // The failure is still recorded, and the remaining child still joined.
        const eddy::instant start = eddy::clock::now();
        bool threw = co_await eddy::test::throws_as<std::runtime_error>(s.join());
        CHECK(threw);
        CHECK(eddy::clock::now() - start == 10ms);
    }());
}

TEST_CASE("children spawn into their parent's scope while it joins", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        std::atomic<int> count{0};
        eddy::scope s;
        s.spawn(spawn_tree(&s, 9, &count));
        auto r = co_await s.join();
        CHECK(r.has_value());
        CHECK(count.load() == (1 << 10) - 1);
    }());
}

TEST_CASE("nested scopes: grandchildren borrow a child's locals", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        std::vector<int> totals(10, 0);
        eddy::scope outer;
        for (std::size_t i = 0; i < totals.size(); ++i) {
            outer.spawn([&totals, i]() -> eddy::task<> {
                std::vector<int> parts(10, 0);
                eddy::scope inner;
                for (std::size_t j = 0; j < parts.size(); ++j) {
                    inner.spawn([&parts, i, j]() -> eddy::task<> {
                        co_await eddy::yield_now();
                        parts[j] = static_cast<int>(i * 10 + j);
                    });
                }
                auto r = co_await inner.join();
                if (!r)
                    throw std::runtime_error("inner join failed");
                int sum = 0;
                for (int p : parts)
                    sum += p;
                totals[i] = sum;
            });
        }
        auto r = co_await outer.join();
        CHECK(r.has_value());
        for (std::size_t i = 0; i < totals.size(); ++i)
            CHECK(totals[i] == static_cast<int>(i * 100 + 45));
    }());
}

TEST_CASE("nested scopes: cancelling the outer owner reaps the grandchildren", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        std::atomic<int> drops{0};
        std::atomic<int> started{0};
        auto parent =
            eddy::spawn([](std::atomic<int>* drops, std::atomic<int>* started) -> eddy::task<> {
                eddy::scope outer;
                for (int i = 0; i < 3; ++i) {
                    outer.spawn([drops, started]() -> eddy::task<> {
                        std::vector<int> borrowed(32, 0);
                        eddy::scope inner;
                        for (std::size_t j = 0; j < 3; ++j) {
                            inner.spawn(scribbles(borrowed.data() + j * 8, 8, started,
                                                  atomic_drop_counter(drops)));
                        }
                        static_cast<void>(co_await inner.join());
                    });
                }
                static_cast<void>(co_await outer.join());
            }(&drops, &started));
        while (started.load() < 9)
            co_await eddy::yield_now();
        const bool cancelled = co_await eddy::test::abort_and_join(parent);
        CHECK(cancelled);
        CHECK(drops.load() == 9);
    }());
}

TEST_CASE("a scope of 10,000 children", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    rt.block_on([]() -> eddy::task<> {
        std::vector<int> hits(10'000, 0);
        eddy::scope s;
        for (std::size_t i = 0; i < hits.size(); ++i) {
            s.spawn([](int* slot) -> eddy::task<> {
                co_await eddy::yield_now();
                ++*slot;
            }(&hits[i]));
        }
        auto r = co_await s.join();
        CHECK(r.has_value());
        std::size_t wrong = 0;
        for (int h : hits)
            wrong += h == 1 ? 0 : 1;
        CHECK(wrong == 0);
    }());
}

TEST_CASE("10,000 children cancelled by their parent's abort", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    auto rt = eddy::test::make_rt(multi);
    std::atomic<int> drops{0};
    rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
        manual_event never;
        auto parent = eddy::spawn([](std::atomic<int>* drops, manual_event* never) -> eddy::task<> {
            eddy::scope s;
            for (int i = 0; i < 10'000; ++i) {
                s.spawn([](manual_event* never, atomic_drop_counter c) -> eddy::task<> {
                    const atomic_drop_counter held = std::move(c);
                    co_await never->wait();
                }(never, atomic_drop_counter(drops)));
            }
            static_cast<void>(co_await s.join());
        }(drops, &never));
        while (never.waiting() < 5'000)
            co_await eddy::yield_now();
        const bool cancelled = co_await eddy::test::abort_and_join(parent);
        CHECK(cancelled);
        CHECK(drops->load() == 10'000);
        CHECK(never.waiting() == 0);
    }(&drops));
}

TEST_CASE("runtime shutdown with a scope joining cancels everything", "[scope]") {
    const bool multi = GENERATE(false, true);
    INFO((multi ? "multi_thread" : "current_thread"));
    std::atomic<int> drops{0};
    {
        auto rt = eddy::test::make_rt(multi);
        rt.block_on([](std::atomic<int>* drops) -> eddy::task<> {
            auto detached = eddy::spawn([](std::atomic<int>* drops) -> eddy::task<> {
                std::vector<int> borrowed(8, 0);
                eddy::scope s;
                for (int i = 0; i < 20; ++i)
                    s.spawn(sleeps_forever(atomic_drop_counter(drops)));
                static_cast<void>(co_await s.join());
            }(drops));
            co_await eddy::test::settle();
        }(&drops));
    }
    CHECK(drops.load() == 20);
}

TEST_CASE("an exception no join reported goes to the unhandled-exception hook", "[scope]") {
    std::atomic<int> reported{0};
    std::atomic<std::uint64_t> reported_id{0};
    auto rt = eddy::runtime::builder::current_thread()
                  .unhandled_exception([&](eddy::task_id id, std::exception_ptr) {
                      reported.fetch_add(1);
                      reported_id.store(id.value);
                  })
                  .build();
    const std::uint64_t failed_id = rt.block_on([]() -> eddy::task<std::uint64_t> {
        std::uint64_t id = 0;
        auto leaves = [](std::uint64_t* id) -> eddy::task<> {
            eddy::scope s;
            *id = s.spawn([]() -> eddy::task<> {
                       co_await eddy::yield_now();
                       throw std::runtime_error("nobody joins this");
                   }).value;
            while (!s.empty())
                co_await eddy::yield_now();
            throw std::logic_error("leaving before join");
        };
        bool threw = co_await eddy::test::throws_as<std::logic_error>(leaves(&id));
        CHECK(threw);
        co_return id;
    }());
    CHECK(reported.load() == 1);
    CHECK(reported_id.load() == failed_id);
}

TEST_CASE("scope::spawn outside a runtime throws logic_error", "[scope]") {
    eddy::scope s;
    CHECK_THROWS_AS(s.spawn(eddy::yield_now()), std::logic_error);
    CHECK(s.empty());
}

// Run in a child process by the next test: leaves a scope without joining it.
TEST_CASE("scope: leaving a scope unjoined (child process)", "[.scope_unjoined]") {
    // Die of the abort itself, not of Catch's report of it (which allocates in the handler).
    std::signal(SIGABRT, SIG_DFL);
    auto rt = eddy::test::current_thread_rt();
    rt.block_on([]() -> eddy::task<> {
        manual_event never;
        eddy::scope s;
        s.spawn([](manual_event* e) -> eddy::task<> { co_await e->wait(); }(&never));
        co_await eddy::test::settle();
        // Leaves without join.
    }());
    std::fputs("children cancelled\n", stdout);
}

TEST_CASE("leaving a scope unjoined is reported; debug builds abort", "[scope]") {
    char exe[4096] = {};
    const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    REQUIRE(len > 0);
    const std::string out_path = "/tmp/eddy_scope_unjoined_" + std::to_string(::getpid());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::string name = "scope: leaving a scope unjoined (child process)";
    char* argv[] = {exe, name.data(), nullptr};
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, exe, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    std::ifstream in(out_path);
    const std::string output((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    std::remove(out_path.c_str());
    INFO(output);
    CHECK(output.find("eddy::scope was destroyed with children still running") !=
          std::string::npos);
#ifdef NDEBUG
    CHECK(WIFEXITED(status));
    CHECK(output.find("children cancelled") != std::string::npos);
#else
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
#endif
}
