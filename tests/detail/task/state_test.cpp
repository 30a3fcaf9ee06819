#include <eddy/detail/task/state.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using eddy::detail::task_state;

namespace {
constexpr std::uint64_t refs(std::uint64_t s) {
    return task_state::ref_count(s);
}
} // namespace

TEST_CASE("a new task is notified, joinable and holds three references", "[task_state]") {
    task_state s(task_state::initial);
    CHECK((s.load() & task_state::notified) != 0);
    CHECK((s.load() & task_state::join_interest) != 0);
    CHECK(refs(s.load()) == 3);
}

TEST_CASE("poll cycle: running, wake while running, idle requeues", "[task_state]") {
    task_state s(task_state::initial);
    CHECK(s.transition_to_running() == task_state::run_action::poll);
    CHECK((s.load() & task_state::notified) == 0);
    // A wake while running only marks NOTIFIED and submits nothing.
    CHECK(s.transition_to_notified_by_ref() == task_state::wake_action::none);
    CHECK(s.transition_to_idle() == task_state::idle_action::requeue);
    CHECK(refs(s.load()) == 3); // the poll's reference became the new entry's
    CHECK(s.transition_to_running() == task_state::run_action::poll);
    CHECK(s.transition_to_idle() == task_state::idle_action::done);
    CHECK(refs(s.load()) == 2);
}

TEST_CASE("waking an idle task submits once; further wakes coalesce", "[task_state]") {
    task_state s(task_state::initial);
    (void)s.transition_to_running();
    (void)s.transition_to_idle();
    CHECK(s.transition_to_notified_by_ref() == task_state::wake_action::submit);
    CHECK(s.transition_to_notified_by_ref() == task_state::wake_action::none);
    s.ref_inc();                                                               // a waker
    CHECK(s.transition_to_notified_by_val() == task_state::wake_action::none); // drops it
    CHECK(refs(s.load()) == 3);
}

TEST_CASE("abort: idle submits, running or notified defers, complete ignores", "[task_state]") {
    task_state idle(task_state::initial);
    (void)idle.transition_to_running();
    (void)idle.transition_to_idle();
    CHECK(idle.transition_to_notified_and_cancel());
    CHECK(idle.transition_to_running() == task_state::run_action::cancel);

    task_state queued(task_state::initial);
    CHECK_FALSE(queued.transition_to_notified_and_cancel());
    CHECK(queued.transition_to_running() == task_state::run_action::cancel);

    task_state running(task_state::initial);
    (void)running.transition_to_running();
    CHECK_FALSE(running.transition_to_notified_and_cancel());
    CHECK(running.transition_to_idle() == task_state::idle_action::requeue);

    task_state done(task_state::initial);
    (void)done.transition_to_running();
    (void)done.transition_to_complete();
    CHECK_FALSE(done.transition_to_notified_and_cancel());
}

TEST_CASE("a queued task that completed meanwhile drops the entry on pop", "[task_state]") {
    task_state s(task_state::initial);
    CHECK(s.transition_to_shutdown());
    (void)s.transition_to_complete();
    CHECK(s.transition_to_running() == task_state::run_action::drop_ref);
}

TEST_CASE("join waker protocol", "[task_state]") {
    task_state s(task_state::initial);
    CHECK(s.set_join_waker());
    CHECK(s.unset_join_waker());
    CHECK(s.set_join_waker());
    (void)s.transition_to_running();
    const auto prev = s.transition_to_complete();
    CHECK((prev & task_state::join_waker) != 0);
    CHECK_FALSE(s.unset_join_waker()); // the completer owns the waker now
}

TEST_CASE("concurrent wakes of an idle task submit exactly once", "[task_state]") {
    for (int round = 0; round < 200; ++round) {
        task_state s(task_state::initial);
        (void)s.transition_to_running();
        (void)s.transition_to_idle();
        std::atomic<int> submits{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&] {
                if (s.transition_to_notified_by_ref() == task_state::wake_action::submit) {
                    submits.fetch_add(1);
                }
            });
        }
        for (auto& t : threads)
            t.join();
        REQUIRE(submits.load() == 1);
    }
}

TEST_CASE("concurrent reference drops free exactly once", "[task_state]") {
    for (int round = 0; round < 200; ++round) {
        task_state s(task_state::initial); // three references
        s.ref_inc();                       // four
        std::atomic<int> last{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&] {
                if (s.ref_dec())
                    last.fetch_add(1);
            });
        }
        for (auto& t : threads)
            t.join();
        REQUIRE(last.load() == 1);
    }
}
