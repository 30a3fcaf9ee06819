#include <eddy/detail/time/driver.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

using eddy::detail::time_driver;
using eddy::detail::timer_registration;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t many = 100'000; // sanitizers: same shape, a tenth of the memory
#else
constexpr std::size_t many = 1'000'000;
#endif

// The tick the test is processing (read by recording_target).
std::uint64_t current_tick = 0;

// A wake target that records how often it was woken, and at which tick.
struct recording_target : eddy::detail::wake_target {
    recording_target() : wake_target{vtable()} {}
    std::uint64_t fired_at = UINT64_MAX;
    int wakes = 0;
    static recording_target& self(eddy::detail::wake_target* w) {
        return *static_cast<recording_target*>(w);
    }
    static void wake(eddy::detail::wake_target* w) noexcept {
        ++self(w).wakes;
        self(w).fired_at = current_tick;
    }
    static void noop(eddy::detail::wake_target*) noexcept {}
    static const eddy::detail::wake_vtable* vtable() {
        static constexpr eddy::detail::wake_vtable t{&wake, &wake, &noop, &noop};
        return &t;
    }
};

// Counts wakes and drops from any thread.
struct counting_target : eddy::detail::wake_target {
    counting_target() : wake_target{vtable()} {}
    std::atomic<long> wakes{0};
    std::atomic<long> drops{0};
    static counting_target& self(eddy::detail::wake_target* w) {
        return *static_cast<counting_target*>(w);
    }
    static void wake(eddy::detail::wake_target* w) noexcept { self(w).wakes.fetch_add(1); }
    static void wake_by_ref(eddy::detail::wake_target* w) noexcept { self(w).wakes.fetch_add(1); }
    static void clone(eddy::detail::wake_target*) noexcept {}
    static void drop(eddy::detail::wake_target* w) noexcept { self(w).drops.fetch_add(1); }
    static const eddy::detail::wake_vtable* vtable() {
        static constexpr eddy::detail::wake_vtable t{&wake, &wake_by_ref, &clone, &drop};
        return &t;
    }
};

} // namespace

TEST_CASE("time driver: many timers each fire once, at their tick, never early", "[time_driver]") {
    time_driver driver(2, true); // paused: the test moves time
    auto& src = driver.source();
    std::vector<timer_registration> regs(many);
    std::vector<recording_target> targets(many);
    std::vector<std::uint64_t> due(many);
    std::mt19937_64 rng(7);
    const auto start = src.now();
    std::size_t refused = 0;
    for (std::size_t i = 0; i < many; ++i) {
        due[i] = 1 + rng() % 100'000; // up to 100 s: three wheel levels
        eddy::waker w(&targets[i]);
        if (!driver.arm(regs[i], start + std::chrono::milliseconds(due[i]), w,
                        static_cast<std::uint32_t>(i)))
            ++refused;
    }
    CHECK(refused == 0);
    CHECK(driver.active() == many);
    std::size_t fired = 0;
    while (auto next = driver.next_expiration()) {
        src.advance_to(src.instant_of(*next));
        current_tick = *next;
        fired += driver.process();
    }
    CHECK(fired == many);
    CHECK(driver.active() == 0);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < many; ++i) {
        if (targets[i].wakes != 1 || targets[i].fired_at != due[i])
            ++wrong;
    }
    CHECK(wrong == 0);
}

TEST_CASE("time driver: workers register and cancel while another thread fires", "[time_driver]") {
    constexpr int threads = 4;
    constexpr int per_thread = 20'000;
    time_driver driver(threads, false);
    counting_target target;
    std::atomic<bool> stop{false};
    std::thread firer([&] {
        while (!stop.load())
            driver.process();
    });
    std::vector<std::thread> workers;
    std::atomic<long> armed{0};
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::minstd_rand rng(static_cast<unsigned>(t + 1));
            std::vector<std::unique_ptr<timer_registration>> live;
            for (int i = 0; i < per_thread; ++i) {
                auto r = std::make_unique<timer_registration>();
                eddy::waker w(&target);
                // 0-2 ms: many fire while others are being cancelled.
                if (driver.arm(*r, driver.source().now() + std::chrono::microseconds(rng() % 2000),
                               w, static_cast<std::uint32_t>(t))) {
                    armed.fetch_add(1);
                } else {
                    (void)w.release(); // not taken: nothing to drop
                }
                live.push_back(std::move(r));
                if (live.size() > 64) {
                    // Cancel (or find fired) an older one, possibly registered by this thread
                    // in another shard's lifetime: disarm is safe either way.
                    driver.disarm(*live.front());
                    live.erase(live.begin());
                }
            }
            for (auto& r : live)
                driver.disarm(*r);
        });
    }
    for (auto& w : workers)
        w.join();
    stop.store(true);
    firer.join();
    // Every armed timer either fired (woken) or was cancelled (dropped), exactly once.
    CHECK(target.wakes.load() + target.drops.load() == armed.load());
    CHECK(driver.active() == 0);
}
