#include <eddy/runtime.hpp>
#include <eddy/sleep.hpp>
#include <eddy/task.hpp>

#include <eddy/detail/scheduler/park.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <thread>

#include <pthread.h>
#include <sched.h>
#include <time.h>

using eddy::detail::park_driver;
using eddy::detail::parker;
using namespace std::chrono_literals;

namespace {

// A driver that reports an event on the `events_at`-th poll (0: never), or unparks `unparks` from
// inside its first poll, and records what the parker asked of it. (How many polls a spin makes
// depends on the machine: a yield that ran another thread ends it. So the tests act on the
// first poll.)
class scripted_driver final : public park_driver {
public:
    explicit scripted_driver(std::size_t events_at, parker* unparks = nullptr)
        : events_at_(events_at), unparks_(unparks) {}

    std::size_t wait(std::optional<std::chrono::nanoseconds> timeout) noexcept override {
        ++waits;
        last_timeout = timeout;
        return 0;
    }
    void wake() noexcept override { ++wakes; }
    std::size_t poll() noexcept override {
        ++polls;
        if (unparks_ != nullptr && polls == 1)
            unparks_->unpark();
        return polls == events_at_ ? 1 : 0;
    }

    std::size_t polls = 0;
    std::size_t waits = 0;
    std::size_t wakes = 0;
    std::optional<std::chrono::nanoseconds> last_timeout;

private:
    std::size_t events_at_;
    parker* unparks_;
};

std::chrono::nanoseconds process_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

} // namespace

TEST_CASE("park_in: an event found while spinning ends the park without sleeping", "[park]") {
    parker p;
    scripted_driver d(1);
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(p.park_in(d, std::nullopt, 60s)); // a minute of spin
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    CHECK(d.polls == 1);
    CHECK(d.waits == 0);
}

TEST_CASE("park_in: without events the spin ends and the thread sleeps in the driver", "[park]") {
    parker p;
    scripted_driver d(0);
    CHECK_FALSE(p.park_in(d, 10s, 2ms));
    CHECK(d.polls >= 1);
    CHECK(d.waits == 1);
    // The sleep is what is left of the timeout after the spin.
    REQUIRE(d.last_timeout.has_value());
    CHECK(*d.last_timeout < 10s);
    CHECK(*d.last_timeout > 9s);
}

TEST_CASE("park_in: the spin never outlasts the timeout", "[park]") {
    parker p;
    scripted_driver d(0);
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(p.park_in(d, 1ms, 60s));
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    CHECK(d.waits == 1);
    REQUIRE(d.last_timeout.has_value());
    CHECK(*d.last_timeout < 1ms);
}

TEST_CASE("park_in: an unpark during the spin ends it", "[park]") {
    parker p;
    scripted_driver d(0, &p);
    CHECK(p.park_in(d, std::nullopt, 60s));
    CHECK(d.polls == 1);
    CHECK(d.waits == 0);
    // The unpark saw a spinning owner, not one asleep in the driver: no wake was needed.
    CHECK(d.wakes == 0);
}

TEST_CASE("park_in: a yield that ran another thread on this CPU ends the spin", "[park]") {
    // The spinning thread and a busy one share one CPU: the spin's first sched_yield runs the
    // busy thread for a time slice, so the spin gives up long before its minute is over.
    cpu_set_t saved;
    REQUIRE(::pthread_getaffinity_np(::pthread_self(), sizeof saved, &saved) == 0);
    const int cpu = ::sched_getcpu();
    REQUIRE(cpu >= 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    REQUIRE(::pthread_setaffinity_np(::pthread_self(), sizeof one, &one) == 0);
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    std::thread busy([&] {
        (void)::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
        started.store(true);
        while (!stop.load(std::memory_order_relaxed)) {
        }
    });
    while (!started.load())
        std::this_thread::yield();
    parker p;
    scripted_driver d(0);
    const auto start = std::chrono::steady_clock::now();
    const bool unparked = p.park_in(d, 10min, 60s);
    const auto took = std::chrono::steady_clock::now() - start;
    stop.store(true);
    busy.join();
    REQUIRE(::pthread_setaffinity_np(::pthread_self(), sizeof saved, &saved) == 0);
    CHECK_FALSE(unparked);
    INFO("spun for " << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
                     << " us, " << d.polls << " polls");
    CHECK(took < 10s);
    CHECK(d.waits == 1); // it went on to sleep in the driver
    REQUIRE(d.last_timeout.has_value());
    CHECK(*d.last_timeout > 9min); // the spin took little of the timeout
}

TEST_CASE("park_in: spin 0 sleeps in the driver at once", "[park]") {
    parker p;
    scripted_driver d(0);
    CHECK_FALSE(p.park_in(d, 5ms));
    CHECK(d.polls == 0);
    CHECK(d.waits == 1);
}

TEST_CASE("an idle runtime spins only briefly before it sleeps", "[park]") {
    for (const auto flavor : {0, 1}) {
        auto rt = flavor == 0 ? eddy::runtime::builder::current_thread().build()
                              : eddy::runtime::builder::multi_thread().worker_threads(2).build();
        // Ten timer wake-ups in 200 ms: each idle period spins 50 µs at most.
        const auto before = process_cpu_time();
        rt.block_on([]() -> eddy::task<> {
            for (int i = 0; i < 10; ++i)
                co_await eddy::sleep(20ms);
        }());
        const auto used = process_cpu_time() - before;
        INFO("flavor " << flavor << ": " << used.count() / 1000 << " us of CPU");
        // Busy polling would take the whole 200 ms of a core (or two); the spins take well
        // under 10 ms.
        CHECK(used < 100ms);
    }
}
