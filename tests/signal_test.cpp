#include <eddy/runtime.hpp>
#include <eddy/select.hpp>
#include <eddy/signal.hpp>
#include <eddy/sleep.hpp>
#include <eddy/spawn.hpp>
#include <eddy/task.hpp>
#include <eddy/timeout.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "support/io.hpp"
#include "support/manual_event.hpp"
#include "support/runtimes.hpp"
#include "support/threads.hpp"
#include "support/throws.hpp"

// Signals are process-wide: these tests use SIGUSR1, SIGUSR2, SIGINT and one real-time signal,
// which nothing else in the test binary touches. eddy's handlers stay installed afterwards (by
// design), which the other tests do not notice.

namespace {

using namespace std::chrono_literals;
namespace sig = eddy::detail::signal;
using eddy::signal::listener;

/// Generous bound on a wait that should end at once: a failure reports instead of hanging.
constexpr auto patience = 5s;

/// Waits (inside a task, up to about 2 s) until at least `n` tasks wait for `signo`.
eddy::task<bool> until_waiting(int signo, std::size_t n) {
    for (int i = 0; i < 2000; ++i) {
        if (sig::waiting(signo) >= n)
            co_return true;
        co_await eddy::sleep(1ms);
    }
    co_return false;
}

/// One `recv` on `l`, bounded by `patience`: true if it completed with success.
eddy::task<bool> receive(listener l) {
    auto r = co_await eddy::timeout(patience, l.recv());
    co_return r.has_value() && r->has_value();
}

/// `listen(signo)` and one `recv`, bounded by `patience`.
eddy::task<bool> listen_and_receive(int signo) {
    auto l = eddy::signal::listen(signo);
    if (!l)
        co_return false;
    co_return co_await receive(*l);
}

/// Whether a `recv` on `l` times out after `d` (nothing was delivered).
eddy::task<bool> times_out(listener* l, std::chrono::milliseconds d) {
    auto r = co_await eddy::timeout(d, l->recv());
    co_return !r.has_value() && r.error() == eddy::errc::timed_out;
}

/// Sends `signo` to the process with kill() and waits until a handler has counted it: kill()
/// delivers it to any thread that does not block it (usually the main thread, not the caller).
/// Only from the main thread: under ThreadSanitizer, a handler for a thread blocked in a system
/// call TSan does not intercept (a main thread parked in block_on) is deferred until it wakes.
void kill_self(int signo) {
    const std::uint64_t before = sig::deliveries(signo);
    REQUIRE(::kill(::getpid(), signo) == 0);
    REQUIRE(eddy::test::eventually([&] { return sig::deliveries(signo) != before; }));
}

/// Delivers `signo` to the calling thread (raise: the handler has run when it returns).
void deliver(int signo) {
    const std::uint64_t before = sig::deliveries(signo);
    REQUIRE(::raise(signo) == 0);
    REQUIRE(sig::deliveries(signo) != before);
}

/// Catch2 installs its own SIGINT handler around every test case (it reports the signal as a
/// fatal error and re-raises it) and puts the previous disposition back afterwards. For the
/// lifetime of this object, eddy's handler is back in place of Catch2's. The first time, eddy's
/// is installed over SIG_DFL, so that it has nothing to chain to.
class eddy_sigint_scope {
public:
    eddy_sigint_scope() {
        REQUIRE(::sigaction(SIGINT, nullptr, &outer_) == 0);
        static const struct sigaction eddy_action = [] {
            REQUIRE_FALSE(sig::installed(SIGINT)); // only this scope ever listens for SIGINT
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            sigemptyset(&dfl.sa_mask);
            REQUIRE(::sigaction(SIGINT, &dfl, nullptr) == 0);
            REQUIRE(eddy::signal::listen(SIGINT).has_value());
            struct sigaction action {};
            REQUIRE(::sigaction(SIGINT, nullptr, &action) == 0);
            return action;
        }();
        REQUIRE(::sigaction(SIGINT, &eddy_action, nullptr) == 0);
    }
    eddy_sigint_scope(const eddy_sigint_scope&) = delete;
    eddy_sigint_scope& operator=(const eddy_sigint_scope&) = delete;
    ~eddy_sigint_scope() { ::sigaction(SIGINT, &outer_, nullptr); }

private:
    struct sigaction outer_ {};
};

std::atomic<int> earlier_handler_calls{0};

void earlier_handler(int /*signo*/) {
    earlier_handler_calls.fetch_add(1);
}

} // namespace

TEST_CASE("signal: a listener receives a delivery", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto l = eddy::signal::listen(SIGUSR1);
        REQUIRE(l.has_value());
        CHECK(l->signal_number() == SIGUSR1);
        CHECK(l->valid());
        auto h = eddy::spawn(receive(*l));
        const bool waiting = co_await until_waiting(SIGUSR1, 1);
        CHECK(waiting);
        deliver(SIGUSR1);
        co_return co_await h;
    }());
    CHECK(ok);
    CHECK(sig::waiting(SIGUSR1) == 0);
}

TEST_CASE("signal: one listener receives delivery after delivery", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const int received = rt.block_on([]() -> eddy::task<int> {
        auto l = eddy::signal::listen(SIGUSR2);
        REQUIRE(l.has_value());
        int n = 0;
        for (int i = 0; i < 3; ++i) {
            // Delivered before the recv: it completes without waiting.
            REQUIRE(::raise(SIGUSR2) == 0);
            auto r = co_await eddy::timeout(patience, l->recv());
            if (r && *r)
                ++n;
        }
        for (int i = 0; i < 3; ++i) {
            // Delivered while the recv waits: the runtime's reader wakes it.
            auto h = eddy::spawn([](listener* l) -> eddy::task<bool> {
                auto r = co_await eddy::timeout(patience, l->recv());
                co_return r&&* r;
            }(&*l));
            const bool waiting = co_await until_waiting(SIGUSR2, 1);
            CHECK(waiting);
            deliver(SIGUSR2);
            if (co_await h)
                ++n;
        }
        co_return n;
    }());
    CHECK(received == 6);
}

TEST_CASE("signal: every task waiting for a signal is woken by one delivery", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    constexpr int tasks = 8;
    const int woken = rt.block_on([]() -> eddy::task<int> {
        std::vector<eddy::join_handle<bool>> handles;
        for (int i = 0; i < tasks; ++i)
            handles.push_back(eddy::spawn(listen_and_receive(SIGUSR1)));
        const bool waiting = co_await until_waiting(SIGUSR1, tasks);
        CHECK(waiting);
        deliver(SIGUSR1);
        int n = 0;
        for (auto& h : handles) {
            if (co_await h)
                ++n;
        }
        co_return n;
    }());
    CHECK(woken == tasks);
}

TEST_CASE("signal: deliveries before a recv coalesce into one", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto l = eddy::signal::listen(SIGUSR1);
        REQUIRE(l.has_value());
        REQUIRE(::raise(SIGUSR1) == 0);
        REQUIRE(::raise(SIGUSR1) == 0);
        const bool first = co_await receive(*l); // copies: *l has seen nothing yet
        CHECK(first);
        auto r = co_await eddy::timeout(patience, l->recv());
        CHECK((r && *r));
        // Both deliveries were marked seen by that recv: nothing is left for another.
        const bool empty = co_await times_out(&*l, 20ms);
        CHECK(empty);
        REQUIRE(::raise(SIGUSR1) == 0);
        auto again = co_await eddy::timeout(patience, l->recv());
        CHECK((again && *again));
    }());
}

TEST_CASE("signal: a listener sees only deliveries after it was created", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto early = eddy::signal::listen(SIGUSR2);
        REQUIRE(early.has_value());
        REQUIRE(::raise(SIGUSR2) == 0);
        auto late = eddy::signal::listen(SIGUSR2);
        REQUIRE(late.has_value());
        const bool late_empty = co_await times_out(&*late, 20ms);
        CHECK(late_empty);
        auto r = co_await eddy::timeout(patience, early->recv());
        CHECK((r && *r));
        // A copy starts where its original is.
        listener copy = *early;
        const bool copy_empty = co_await times_out(&copy, 5ms);
        CHECK(copy_empty);
    }());
}

TEST_CASE("signal: timeout around a recv with no signal gives timed_out", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        auto l = eddy::signal::listen(SIGUSR1);
        REQUIRE(l.has_value());
        auto r = co_await eddy::timeout(10ms, l->recv());
        CHECK_FALSE(r.has_value());
        CHECK(r.error() == eddy::errc::timed_out);
        CHECK(sig::waiting(SIGUSR1) == 0); // the expired recv withdrew itself
        // The listener still works afterwards.
        REQUIRE(::raise(SIGUSR1) == 0);
        auto again = co_await eddy::timeout(patience, l->recv());
        CHECK((again && *again));
    }());
}

TEST_CASE("signal: an aborted recv leaves nothing behind and a new recv works",
          "[signal][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        // Aborted while waiting.
        auto h = eddy::spawn(listen_and_receive(SIGUSR2));
        bool waiting = co_await until_waiting(SIGUSR2, 1);
        CHECK(waiting);
        const bool cancelled = co_await eddy::test::abort_and_join(h);
        CHECK(cancelled);
        CHECK(sig::waiting(SIGUSR2) == 0);

        // Aborted right after a delivery, whether or not its wake got to it first.
        auto h2 = eddy::spawn(listen_and_receive(SIGUSR2));
        waiting = co_await until_waiting(SIGUSR2, 1);
        CHECK(waiting);
        deliver(SIGUSR2);
        h2.abort();
        try {
            (void)co_await h2;
        } catch (const eddy::join_error&) {
        }
        CHECK(sig::waiting(SIGUSR2) == 0);

        // A new recv still works.
        auto h3 = eddy::spawn(listen_and_receive(SIGUSR2));
        waiting = co_await until_waiting(SIGUSR2, 1);
        CHECK(waiting);
        deliver(SIGUSR2);
        const bool ok = co_await h3;
        CHECK(ok);
    }());
}

TEST_CASE("signal: a delivery that races a cancelled recv is seen by the next recv",
          "[signal][cancel]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    for (int round = 0; round < 20; ++round) {
        const int seen = rt.block_on([]() -> eddy::task<int> {
            auto l = eddy::signal::listen(SIGUSR1);
            REQUIRE(l.has_value());
            eddy::test::manual_event ev;
            // The recv loses if the event wins the select: then its delivery must stay unseen.
            auto h = eddy::spawn([](listener* l, eddy::test::manual_event* ev) -> eddy::task<int> {
                auto r = co_await eddy::select(l->recv(), ev->wait());
                co_return r.index() == 0 ? 1 : 0;
            }(&*l, &ev));
            const bool waiting = co_await until_waiting(SIGUSR1, 1);
            CHECK(waiting);
            REQUIRE(::raise(SIGUSR1) == 0);
            ev.set();
            int n = co_await h;
            // Exactly one of the select and this recv observes the delivery.
            const bool nothing_left = co_await times_out(&*l, 5ms);
            if (!nothing_left)
                ++n;
            co_return n;
        }());
        REQUIRE(seen == 1);
    }
}

TEST_CASE("signal: ctrl_c completes at the next SIGINT", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    const eddy_sigint_scope scope;
    auto rt = cfg.runtime();
    rt.block_on([]() -> eddy::task<> {
        // Raised between the call and the co_await: ctrl_c listens at the call.
        auto c = eddy::signal::ctrl_c();
        REQUIRE(::raise(SIGINT) == 0);
        auto r = co_await eddy::timeout(patience, std::move(c));
        CHECK((r && *r));

        // Raised while a task waits in ctrl_c.
        auto h = eddy::spawn([]() -> eddy::task<bool> {
            auto r = co_await eddy::timeout(patience, eddy::signal::ctrl_c());
            co_return r&&* r;
        });
        const bool waiting = co_await until_waiting(SIGINT, 1);
        CHECK(waiting);
        REQUIRE(::raise(SIGINT) == 0);
        const bool ok = co_await h;
        CHECK(ok);
    }());
}

TEST_CASE("signal: a signal sent to a foreign thread wakes a runtime's task", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    auto rt = cfg.runtime();
    const bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto h = eddy::spawn(listen_and_receive(SIGUSR1));
        const bool waiting = co_await until_waiting(SIGUSR1, 1);
        CHECK(waiting);
        int rc = -1;
        std::thread t([&rc] { rc = ::pthread_kill(::pthread_self(), SIGUSR1); });
        t.join();
        CHECK(rc == 0);
        co_return co_await h;
    }());
    CHECK(ok);
}

TEST_CASE("signal: two runtimes at once both see a delivery", "[signal]") {
    const int i = GENERATE(range(0, 4));
    const auto& cfg_a = eddy::test::io_configs[i];
    const auto& cfg_b = eddy::test::io_configs[3 - i]; // the other backend, the other flavor
    INFO(cfg_a.name() << " + " << cfg_b.name());
    auto rt_a = cfg_a.runtime();
    auto rt_b = cfg_b.runtime();
    std::atomic<int> woken{0};
    auto wait_in = [&woken](eddy::runtime& rt) {
        return std::thread([&rt, &woken] {
            if (rt.block_on(listen_and_receive(SIGUSR2)))
                woken.fetch_add(1);
        });
    };
    std::thread a = wait_in(rt_a);
    std::thread b = wait_in(rt_b);
    const bool both_waiting = eddy::test::eventually([] { return sig::waiting(SIGUSR2) >= 2; });
    CHECK(both_waiting);
    CHECK(sig::reader_count() >= 2);
    kill_self(SIGUSR2);
    a.join();
    b.join();
    CHECK(woken.load() == 2);
}

TEST_CASE("signal: a runtime's reader goes away with the runtime", "[signal]") {
    const auto& cfg = eddy::test::io_configs[GENERATE(range(0, 4))];
    INFO(cfg.name());
    const std::size_t readers_before = sig::reader_count();
    {
        auto rt = cfg.runtime();
        rt.block_on([]() -> eddy::task<> {
            auto l = eddy::signal::listen(SIGUSR1);
            REQUIRE(l.has_value());
            const bool empty = co_await times_out(&*l, 2ms); // waits: starts the reader
            CHECK(empty);
        }());
        CHECK(sig::reader_count() == readers_before + 1);
        // A task still waiting when the runtime goes away is cancelled and withdraws.
        // (A current-thread runtime runs it only inside block_on: there it is never polled.)
        (void)rt.spawn(listen_and_receive(SIGUSR1));
        if (cfg.multi)
            CHECK(eddy::test::eventually([] { return sig::waiting(SIGUSR1) == 1; }));
    }
    CHECK(sig::reader_count() == readers_before);
    CHECK(sig::waiting(SIGUSR1) == 0);
    // A new runtime (perhaps at the same address) gets a reader of its own.
    auto rt = cfg.runtime();
    const bool ok = rt.block_on([]() -> eddy::task<bool> {
        auto h = eddy::spawn(listen_and_receive(SIGUSR1));
        const bool waiting = co_await until_waiting(SIGUSR1, 1);
        CHECK(waiting);
        deliver(SIGUSR1);
        co_return co_await h;
    }());
    CHECK(ok);
    CHECK(sig::reader_count() == readers_before + 1);
}

TEST_CASE("signal: signals that cannot be handled are rejected with invalid_argument", "[signal]") {
    for (const int signo :
         {0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, 32, NSIG, NSIG + 1, 1000}) {
        INFO(signo);
        auto l = eddy::signal::listen(signo);
        REQUIRE_FALSE(l.has_value());
        CHECK(l.error() == std::errc::invalid_argument);
    }
    listener empty;
    CHECK_FALSE(empty.valid());
    CHECK_THROWS_AS((void)empty.recv(), std::logic_error);
    auto rt = eddy::test::current_thread_rt();
    const bool rejected = rt.block_on([]() -> eddy::task<bool> {
        auto r = co_await eddy::signal::recv(SIGKILL);
        co_return !r.has_value() && r.error() == std::errc::invalid_argument;
    }());
    CHECK(rejected);
}

TEST_CASE("signal: listen works outside a runtime, recv is awaited inside one", "[signal]") {
    auto l = eddy::signal::listen(SIGUSR2);
    REQUIRE(l.has_value());
    REQUIRE(::raise(SIGUSR2) == 0); // counted for `l` although no runtime reads the pipe yet
    auto rt = eddy::test::multi_thread_rt();
    const bool ok = rt.block_on(receive(*l));
    CHECK(ok);
    // recv(signo) listens at the call: a delivery before the first co_await counts.
    auto pending = eddy::signal::recv(SIGUSR2);
    REQUIRE(::raise(SIGUSR2) == 0);
    auto r = rt.block_on(eddy::timeout(patience, std::move(pending)));
    CHECK((r && *r));
}

TEST_CASE("signal: a handler installed before eddy's is still called", "[signal]") {
    const int signo = SIGRTMIN + 2;
    if (sig::installed(signo)) {
        WARN("eddy's handler is already installed for this signal; nothing to check");
        return;
    }
    struct sigaction earlier {};
    earlier.sa_handler = &earlier_handler;
    sigemptyset(&earlier.sa_mask);
    struct sigaction outer {};
    REQUIRE(::sigaction(signo, &earlier, &outer) == 0);
    auto l = eddy::signal::listen(signo);
    REQUIRE(l.has_value());
    const int calls = earlier_handler_calls.load();
    const std::uint64_t deliveries = sig::deliveries(signo);
    errno = EDOM;
    REQUIRE(::raise(signo) == 0);
    CHECK(errno == EDOM); // the handler preserved it
    CHECK(earlier_handler_calls.load() == calls + 1);
    CHECK(sig::deliveries(signo) == deliveries + 1);
    auto rt = eddy::test::current_thread_rt();
    const bool ok = rt.block_on(receive(*l));
    CHECK(ok);
}
