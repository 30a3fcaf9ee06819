#include <eddy/join_handle.hpp>
#include <eddy/runtime.hpp>
#include <eddy/spawn.hpp>
#include <eddy/sync/notify.hpp>
#include <eddy/yield_now.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "support/runtimes.hpp"
#include "support/throws.hpp"

namespace {

using eddy::test::current_thread_rt;
using eddy::test::make_rt;
using eddy::test::multi_thread_rt;
using eddy::test::settle;

constexpr int rounds = 2000;

/// A task that waits for one notification, then counts it.
eddy::task<> wait_once(eddy::notify* n, int* woken) {
    co_await n->notified();
    ++*woken;
}

} // namespace

TEST_CASE("notify_one before notified() completes it at once", "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        n->notify_one();
        co_await n->notified(); // the stored permit
        auto op = n->notified();
        CHECK_FALSE(op.enable()); // consumed: nothing stored now
    }(&n));
}

TEST_CASE("notify: two notify_one with nobody waiting store one permit", "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        n->notify_one();
        n->notify_one();
        int woken = 0;
        auto a = eddy::spawn(wait_once(n, &woken));
        auto b = eddy::spawn(wait_once(n, &woken));
        co_await settle();
        CHECK(woken == 1);
        n->notify_one();
        co_await a;
        co_await b;
        CHECK(woken == 2);
    }(&n));
}

TEST_CASE("notify_one wakes waiters one at a time in FIFO order", "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        std::vector<int> order;
        std::vector<eddy::join_handle<void>> hs;
        for (int i = 0; i < 5; ++i) {
            hs.push_back(
                eddy::spawn([](eddy::notify* n, std::vector<int>* order, int i) -> eddy::task<> {
                    co_await n->notified();
                    order->push_back(i);
                }(n, &order, i)));
            co_await eddy::yield_now();
        }
        for (int i = 0; i < 5; ++i) {
            n->notify_one();
            co_await settle();
            CHECK(order.size() == static_cast<std::size_t>(i + 1));
        }
        for (auto& h : hs)
            co_await h;
        CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    }(&n));
}

TEST_CASE("notify_waiters wakes every waiter and stores nothing", "[notify]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::notify n;
        auto rt = make_rt(flavor != 0);
        rt.block_on([](eddy::notify* n) -> eddy::task<> {
            std::atomic<int> started{0};
            std::atomic<int> woken{0};
            std::vector<eddy::join_handle<void>> hs;
            constexpr int waiters = 70; // more than two wake batches
            for (int i = 0; i < waiters; ++i) {
                hs.push_back(eddy::spawn([](eddy::notify* n, std::atomic<int>* started,
                                            std::atomic<int>* woken) -> eddy::task<> {
                    auto op = n->notified(); // counts for notify_waiters from here
                    started->fetch_add(1);
                    co_await op;
                    woken->fetch_add(1);
                }(n, &started, &woken)));
            }
            while (started.load() != waiters)
                co_await eddy::yield_now();
            n->notify_waiters();
            for (auto& h : hs)
                co_await h;
            CHECK(woken.load() == waiters);
            // Nothing stored: a new waiter waits for the next notification.
            auto op = n->notified();
            CHECK_FALSE(op.enable());
            n->notify_one();
            co_await op;
        }(&n));
    }
}

TEST_CASE("notify: a notified() created before notify_waiters completes when awaited later",
          "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        auto before = n->notified();
        n->notify_waiters();
        auto after = n->notified();
        co_await before; // completes: it existed when notify_waiters ran
        CHECK_FALSE(after.enable());
    }(&n));
}

TEST_CASE("notify: enable() registers before the condition check so no notify_one is lost",
          "[notify]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::notify n;
        std::atomic<int> value{0};
        auto rt = make_rt(flavor != 0);
        rt.block_on([](eddy::notify* n, std::atomic<int>* value) -> eddy::task<> {
            // Consumer: waits for each value in turn with the enable() pattern. A second waiter
            // on the same notify would take a stored permit; with enable() it cannot steal one
            // meant for us.
            auto consumer =
                eddy::spawn([](eddy::notify* n, std::atomic<int>* value) -> eddy::task<int> {
                    int seen = 0;
                    while (seen < rounds) {
                        auto op = n->notified();
                        op.enable();
                        const int v = value->load();
                        if (v > seen) {
                            seen = v;
                            continue;
                        }
                        co_await op;
                    }
                    co_return seen;
                }(n, value));
            for (int i = 1; i <= rounds; ++i) {
                value->store(i);
                n->notify_one();
                if (i % 16 == 0)
                    co_await eddy::yield_now();
            }
            int seen = co_await consumer;
            CHECK(seen == rounds);
        }(&n, &value));
    }
}

TEST_CASE("notify: an enabled operation receives notify_one sent before its co_await", "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        auto op = n->notified();
        CHECK_FALSE(op.enable());
        int woken = 0;
        // A waiter queued after us must not get the notification meant for the first in line.
        auto other = eddy::spawn(wait_once(n, &woken));
        co_await settle();
        n->notify_one();
        CHECK(op.enable()); // already notified
        co_await settle();
        CHECK(woken == 0);
        co_await op;
        n->notify_one();
        co_await other;
        CHECK(woken == 1);
    }(&n));
}

TEST_CASE("notify: a cancelled waiter leaves the queue without taking a notification", "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        int woken = 0;
        auto a = eddy::spawn(wait_once(n, &woken));
        co_await settle();
        bool threw = co_await eddy::test::abort_and_join(a);
        CHECK(threw);
        n->notify_one(); // nobody waits: stored
        co_await n->notified();
        CHECK(woken == 0);

        // A dropped, enabled operation leaves the queue as well.
        {
            auto op = n->notified();
            op.enable();
        }
        n->notify_one();
        co_await n->notified();
    }(&n));
}

TEST_CASE("notify: a waiter cancelled after notify_one chose it passes the notification on",
          "[notify]") {
    eddy::notify n;
    auto rt = current_thread_rt();
    rt.block_on([](eddy::notify* n) -> eddy::task<> {
        int a_woken = 0;
        int b_woken = 0;
        auto a = eddy::spawn(wait_once(n, &a_woken));
        co_await settle();
        auto b = eddy::spawn(wait_once(n, &b_woken));
        co_await settle();
        n->notify_one(); // chooses `a`, which is woken but has not run
        bool threw = co_await eddy::test::abort_and_join(a);
        CHECK(threw);
        co_await b; // got it from a's destructor
        CHECK(a_woken == 0);
        CHECK(b_woken == 1);

        // With nobody behind it, the notification goes back as the stored permit.
        int c_woken = 0;
        auto c = eddy::spawn(wait_once(n, &c_woken));
        co_await settle();
        n->notify_one();
        bool threw2 = co_await eddy::test::abort_and_join(c);
        CHECK(threw2);
        auto op = n->notified();
        CHECK(op.enable()); // the permit is there
        co_await op;
    }(&n));
}

TEST_CASE("notify: concurrent notify_one and waiters on two workers lose no wakeup", "[notify]") {
    eddy::notify n;
    std::atomic<int> tokens{0};
    auto rt = multi_thread_rt();
    std::thread external([&] {
        for (int i = 0; i < 500; ++i) {
            tokens.fetch_add(1);
            n.notify_one();
            if (i % 50 == 0)
                std::this_thread::yield();
        }
    });
    rt.block_on([](eddy::notify* n, std::atomic<int>* tokens) -> eddy::task<> {
        // Four consumers take tokens; each waits with the enable() pattern.
        std::atomic<int> taken{0};
        std::vector<eddy::join_handle<void>> hs;
        for (int c = 0; c < 4; ++c) {
            hs.push_back(eddy::spawn([](eddy::notify* n, std::atomic<int>* tokens,
                                        std::atomic<int>* taken) -> eddy::task<> {
                while (taken->load() < 500) {
                    auto op = n->notified();
                    op.enable();
                    int t = tokens->load();
                    if (t > 0 && tokens->compare_exchange_strong(t, t - 1)) {
                        if (taken->fetch_add(1) + 1 == 500)
                            n->notify_waiters(); // release the others
                        continue;
                    }
                    if (taken->load() >= 500)
                        break;
                    co_await op;
                }
            }(n, tokens, &taken)));
        }
        for (auto& h : hs)
            co_await h;
        CHECK(taken.load() == 500);
    }(&n, &tokens));
    external.join();
}

TEST_CASE("notify: shutting the runtime down with waiters frees them", "[notify]") {
    for (int flavor = 0; flavor < 2; ++flavor) {
        eddy::notify n;
        {
            auto rt = make_rt(flavor != 0);
            rt.block_on([](eddy::notify* n) -> eddy::task<> {
                for (int i = 0; i < 8; ++i) {
                    eddy::spawn([](eddy::notify* n) -> eddy::task<> {
                        co_await n->notified();
                        co_await n->notified();
                    }(n))
                        .detach();
                }
                co_await settle();
                n->notify_one(); // chosen, woken, then shut down
            }(&n));
        }
        // On the current-thread runtime the chosen waiter never ran: its notification was
        // passed along the cancelled waiters and came back as the stored permit. (On workers
        // it may have run and consumed it.)
        auto op = n.notified();
        const bool stored = op.enable();
        if (flavor == 0)
            CHECK(stored);
    }
}
