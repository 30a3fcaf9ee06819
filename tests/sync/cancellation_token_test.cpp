#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/cancellation_token.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace eddy::detail {
/// Test access to the node behind a token.
struct cancellation_token_access {
    static std::size_t child_count(const cancellation_token& t) { return t.node_->child_count(); }
};
} // namespace eddy::detail

namespace {

using eddy::test::current_thread_rt;
using eddy::test::make_rt;
using eddy::test::settle;

using eddy::cancellation_token;
using eddy::detail::cancellation_token_access;

} // namespace

TEST_CASE("cancellation_token copies share one state", "[cancellation_token]") {
    cancellation_token a;
    cancellation_token b = a;
    cancellation_token other;
    CHECK(a == b);
    CHECK_FALSE(a == other);
    CHECK_FALSE(a.is_cancelled());
    b.cancel();
    CHECK(a.is_cancelled());
    CHECK(b.is_cancelled());
    CHECK_FALSE(other.is_cancelled());
    a.cancel(); // idempotent

    cancellation_token moved = std::move(other);
    CHECK_FALSE(other.valid()); // NOLINT(bugprone-use-after-move): checking the moved-from state
    CHECK_THROWS_AS(other.cancel(), std::logic_error);
    CHECK_THROWS_AS((void)other.child_token(), std::logic_error);
    CHECK(moved.valid());
    other = moved; // a moved-from token can be assigned again
    CHECK(other == moved);
}

TEST_CASE("cancellation_token: a parent's cancel reaches grandchildren, a child's does not go up",
          "[cancellation_token]") {
    cancellation_token root;
    auto child = root.child_token();
    auto sibling = root.child_token();
    auto grandchild = child.child_token();
    auto other_grandchild = sibling.child_token();

    grandchild.cancel();
    CHECK(grandchild.is_cancelled());
    CHECK_FALSE(child.is_cancelled());
    CHECK_FALSE(root.is_cancelled());

    child.cancel();
    CHECK(child.is_cancelled());
    CHECK_FALSE(root.is_cancelled());
    CHECK_FALSE(sibling.is_cancelled());
    CHECK_FALSE(other_grandchild.is_cancelled());

    root.cancel();
    CHECK(sibling.is_cancelled());
    CHECK(other_grandchild.is_cancelled());

    auto late = root.child_token(); // a child of a cancelled token starts cancelled
    CHECK(late.is_cancelled());
}

TEST_CASE("cancellation_token: dropping a middle token keeps its children attached upward",
          "[cancellation_token]") {
    cancellation_token root;
    cancellation_token grandchild;
    {
        auto child = root.child_token();
        grandchild = child.child_token();
        CHECK(cancellation_token_access::child_count(root) == 1);
    } // child dropped: root adopts grandchild
    CHECK(cancellation_token_access::child_count(root) == 1);
    root.cancel();
    CHECK(grandchild.is_cancelled());
    CHECK(cancellation_token_access::child_count(root) == 0);

    // A dropped root leaves its children as independent roots.
    cancellation_token orphan;
    {
        cancellation_token r2;
        orphan = r2.child_token();
    }
    CHECK_FALSE(orphan.is_cancelled());
    orphan.cancel();
    CHECK(orphan.is_cancelled());
}

TEST_CASE("cancellation_token: dropped children do not accumulate in the parent",
          "[cancellation_token]") {
    cancellation_token root;
    for (int i = 0; i < 10'000; ++i) {
        auto c = root.child_token();
        auto gc = c.child_token();
        (void)gc;
    }
    CHECK(cancellation_token_access::child_count(root) == 0);
    auto kept = root.child_token();
    CHECK(cancellation_token_access::child_count(root) == 1);
    kept.cancel(); // a cancelled child detaches as well
    CHECK(cancellation_token_access::child_count(root) == 0);
}

TEST_CASE("cancellation_token drop_guard cancels unless disarmed", "[cancellation_token]") {
    cancellation_token a;
    { auto g = a.drop_guard(); }
    CHECK(a.is_cancelled());

    cancellation_token b;
    {
        auto g = b.drop_guard();
        cancellation_token back = g.disarm();
        CHECK(back == b);
    }
    CHECK_FALSE(b.is_cancelled());

    cancellation_token c;
    {
        auto g1 = c.drop_guard();
        auto g2 = std::move(g1); // the moved-from guard does nothing
        CHECK_FALSE(c.is_cancelled());
    }
    CHECK(c.is_cancelled());
}

TEST_CASE("cancellation_token cancelled() completes at once or on cancel", "[cancellation_token]") {
    cancellation_token t;
    auto rt = current_thread_rt();
    rt.block_on([](cancellation_token t) -> eddy::task<> {
        int woken = 0;
        auto waiter = eddy::spawn([](cancellation_token t, int* woken) -> eddy::task<> {
            co_await t.cancelled();
            ++*woken;
        }(t, &woken));
        co_await settle();
        CHECK(woken == 0);
        t.cancel();
        co_await waiter;
        CHECK(woken == 1);
        for (int i = 0; i < 300; ++i) // ready every time, beyond one poll's budget
            co_await t.cancelled();
        // The operation holds its own copy of the token.
        auto op = cancellation_token().child_token().cancelled();
        (void)op;
    }(t));
}

TEST_CASE("cancellation_token: an aborted waiter withdraws", "[cancellation_token]") {
    cancellation_token t;
    auto rt = current_thread_rt();
    rt.block_on([](cancellation_token t) -> eddy::task<> {
        auto a = eddy::spawn([](cancellation_token t) -> eddy::task<> {
            co_await t.cancelled();
            FAIL("resumed after abort");
        }(t));
        int woken = 0;
        auto b = eddy::spawn([](cancellation_token t, int* woken) -> eddy::task<> {
            co_await t.cancelled();
            ++*woken;
        }(t, &woken));
        co_await settle();
        bool threw = co_await eddy::test::abort_and_join(a);
        CHECK(threw);
        t.cancel();
        co_await b;
        CHECK(woken == 1);

        // Aborted after the cancel woke it, before it resumed.
        cancellation_token u;
        auto c = eddy::spawn([](cancellation_token u) -> eddy::task<> {
            co_await u.cancelled();
            FAIL("resumed after abort");
        }(u));
        co_await settle();
        u.cancel();
        bool threw2 = co_await eddy::test::abort_and_join(c);
        CHECK(threw2);
    }(t));
}

TEST_CASE("cancellation_token: cancelling the root wakes waiters on every token of the tree",
          "[cancellation_token]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        cancellation_token root;
        std::atomic<int> woken{0};
        std::atomic<int> started{0};
        auto rt = make_rt(flavor != 0);
        rt.block_on([](cancellation_token root, std::atomic<int>* woken,
                       std::atomic<int>* started) -> eddy::task<> {
            std::vector<eddy::join_handle<void>> hs;
            std::vector<cancellation_token> mids;
            for (int m = 0; m < 10; ++m)
                mids.push_back(root.child_token());
            for (int i = 0; i < 100; ++i) {
                // Waiters on the root, its children and its grandchildren.
                cancellation_token t = i % 3 == 0   ? root
                                       : i % 3 == 1 ? mids[i % 10]
                                                    : mids[i % 10].child_token();
                hs.push_back(eddy::spawn([](cancellation_token t, std::atomic<int>* woken,
                                            std::atomic<int>* started) -> eddy::task<> {
                    auto op = t.cancelled();
                    started->fetch_add(1);
                    co_await op;
                    woken->fetch_add(1);
                }(std::move(t), woken, started)));
            }
            while (started->load() != 100)
                co_await eddy::yield_now();
            mids.clear(); // the grandchildren's parents are dropped: the root adopts them
            root.cancel();
            for (auto& h : hs)
                co_await h;
        }(root, &woken, &started));
        CHECK(woken.load() == 100);
    }
}

TEST_CASE("cancellation_token: concurrent cancels, children and drops from several threads",
          "[cancellation_token]") {
    for (int round = 0; round < 20; ++round) {
        cancellation_token root;
        auto mid = root.child_token();
        std::atomic<bool> go{false};
        std::vector<cancellation_token> kept[3];
        std::vector<std::thread> threads;
        for (int t = 0; t < 3; ++t) {
            threads.emplace_back([&, t] {
                while (!go.load()) {
                }
                std::vector<cancellation_token>& mine = kept[t];
                for (int i = 0; i < 200; ++i) {
                    const cancellation_token& parent = (i + t) % 2 == 0 ? mid : root;
                    mine.push_back(parent.child_token());
                    mine.push_back(mine.back().child_token());
                    if (i % 3 == 0)
                        mine.erase(mine.begin()); // drops middle tokens too
                    if (t == 0 && i == 100)
                        mid.cancel();
                }
                if (t == 1)
                    root.cancel();
            });
        }
        go = true;
        for (auto& th : threads)
            th.join();
        CHECK(mid.is_cancelled());
        CHECK(root.is_cancelled());
        CHECK(cancellation_token_access::child_count(root) == 0);
        std::size_t not_cancelled = 0;
        for (auto& v : kept) {
            for (auto& c : v)
                not_cancelled += c.is_cancelled() ? 0 : 1;
        }
        CHECK(not_cancelled == 0); // every descendant, adopted or not, was reached
    }
}

TEST_CASE("cancellation_token: shutting the runtime down with waiters frees them",
          "[cancellation_token]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        cancellation_token root;
        {
            auto rt = make_rt(flavor != 0);
            rt.block_on([](cancellation_token root) -> eddy::task<> {
                for (int i = 0; i < 10; ++i) {
                    eddy::spawn([](cancellation_token t) -> eddy::task<> {
                        co_await t.cancelled();
                    }(root.child_token()))
                        .detach();
                }
                co_await settle();
            }(root));
        }
        CHECK(cancellation_token_access::child_count(root) == 0);
        root.cancel();
    }
}
