#include <eddy/detail/time/entry.hpp>
#include <eddy/detail/time/wheel.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <utility>
#include <vector>

using eddy::detail::timer_entry;
using eddy::detail::timer_list;
using eddy::detail::wheel;

namespace {

// Entries are identified by their index in this pool.
struct entries {
    explicit entries(std::size_t n) : pool(n) {}
    std::size_t index(const timer_entry* e) const {
        for (std::size_t i = 0; i < pool.size(); ++i) {
            if (&pool[i] == e)
                return i;
        }
        return SIZE_MAX;
    }
    std::deque<timer_entry> pool;
};

std::vector<timer_entry*> drain(timer_list& list) {
    std::vector<timer_entry*> out;
    while (timer_entry* e = list.pop_front())
        out.push_back(e);
    return out;
}

} // namespace

TEST_CASE("wheel: a deadline at or before now is refused (the caller fires it)", "[wheel]") {
    wheel w;
    timer_entry e;
    timer_list expired;
    w.poll(100, expired);
    CHECK_FALSE(w.insert(&e, 100));
    CHECK_FALSE(w.insert(&e, 3));
    CHECK(w.empty());
    CHECK(w.insert(&e, 101));
    CHECK(w.size() == 1);
}

TEST_CASE("wheel: timers fire at their deadline across every level boundary", "[wheel]") {
    // Deadlines on both sides of each level boundary, up to the top level.
    std::vector<std::uint64_t> deadlines = {1, 63, 64, 65, 4095, 4096, 4097};
    for (unsigned l = 2; l < wheel::num_levels; ++l) {
        const std::uint64_t b = std::uint64_t{1} << (wheel::bits_per_level * (l + 1));
        deadlines.push_back(b - 1);
        if (b <= wheel::max_duration)
            deadlines.push_back(b);
    }
    deadlines.push_back(wheel::max_duration);
    for (std::uint64_t d : deadlines) {
        INFO("deadline " << d);
        wheel w;
        timer_entry e;
        timer_list expired;
        REQUIRE(w.insert(&e, d));
        // next_expiration never lies past the deadline
        auto next = w.next_expiration();
        REQUIRE(next.has_value());
        CHECK(next->deadline <= d);
        w.poll(d - 1, expired);
        CHECK(expired.empty());
        CHECK(w.size() == 1);
        w.poll(d, expired);
        CHECK(expired.pop_front() == &e);
        CHECK(w.empty());
        CHECK_FALSE(e.registered);
    }
}

TEST_CASE("wheel: deadlines beyond the range are clamped to it", "[wheel]") {
    wheel w;
    timer_list expired;
    w.poll(12'345, expired);
    timer_entry e;
    REQUIRE(w.insert(&e, UINT64_MAX));
    const std::uint64_t clamp = 12'345 + wheel::max_duration;
    w.poll(clamp - 1, expired);
    CHECK(expired.empty());
    w.poll(clamp, expired);
    CHECK(expired.pop_front() == &e);
}

TEST_CASE("wheel: removed timers never fire and leave no trace", "[wheel]") {
    wheel w;
    timer_list expired;
    timer_entry hour;
    timer_entry soon;
    REQUIRE(w.insert(&hour, 3'600'000));
    REQUIRE(w.insert(&soon, 10));
    w.remove(&hour);
    CHECK(w.size() == 1);
    CHECK_FALSE(hour.registered);
    w.poll(10'000'000, expired);
    auto fired = drain(expired);
    REQUIRE(fired.size() == 1);
    CHECK(fired[0] == &soon);
    CHECK(w.empty());
    CHECK_FALSE(w.next_expiration().has_value());
}

TEST_CASE("wheel: fire order is by deadline, then insertion, even across cascades", "[wheel]") {
    wheel w;
    timer_list expired;
    entries es(3);
    // a: inserted early, far away (level 2); b and c: same deadline, inserted later, nearer.
    REQUIRE(w.insert(&es.pool[0], 5'000));
    w.poll(4'990, expired);
    REQUIRE(expired.empty());
    REQUIRE(w.insert(&es.pool[1], 5'000)); // now level 0
    REQUIRE(w.insert(&es.pool[2], 4'999));
    w.poll(6'000, expired);
    auto fired = drain(expired);
    REQUIRE(fired.size() == 3);
    CHECK(es.index(fired[0]) == 2);
    CHECK(es.index(fired[1]) == 0); // same deadline as b, inserted first
    CHECK(es.index(fired[2]) == 1);
}

TEST_CASE("wheel: 1,000,000 random timers each fire once, in order, at their deadline", "[wheel]") {
    constexpr std::size_t n = 1'000'000;
    std::deque<timer_entry> pool(n);
    std::vector<std::uint64_t> deadline(n);
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::uint64_t> dist(1, 3'600'000); // up to an hour
    wheel w;
    std::size_t refused = 0;
    for (std::size_t i = 0; i < n; ++i) {
        deadline[i] = dist(rng);
        refused += w.insert(&pool[i], deadline[i]) ? 0 : 1;
    }
    REQUIRE(refused == 0);
    // Remove every 10th, as cancelled sleeps would.
    for (std::size_t i = 0; i < n; i += 10)
        w.remove(&pool[i]);
    std::size_t fired = 0;
    std::size_t wrong = 0;
    std::uint64_t last_deadline = 0;
    std::uint64_t last_sequence = 0;
    timer_list expired;
    for (std::uint64_t now = 0; now <= 3'600'000; now += 997) {
        w.poll(now, expired);
        while (timer_entry* e = expired.pop_front()) {
            ++fired;
            if (e->deadline > now || e->deadline <= now - std::min<std::uint64_t>(now, 997)) {
                ++wrong; // fired late or early
            }
            if (e->deadline < last_deadline ||
                (e->deadline == last_deadline && e->sequence < last_sequence)) {
                ++wrong; // out of order
            }
            last_deadline = e->deadline;
            last_sequence = e->sequence;
        }
    }
    w.poll(3'600'000, expired);
    fired += drain(expired).size();
    CHECK(wrong == 0);
    CHECK(fired == n - n / 10);
    CHECK(w.empty());
}

TEST_CASE("wheel: on the top level ring, a nearer slot is not hidden by now's own slot",
          "[wheel]") {
    // After the first clamped round, `a` (due just past the range) and `b` (due far beyond it)
    // both sit on the top level: `b` in the slot of the current time (next rotation), `a` in the
    // slot after it. `a` must come first.
    wheel w;
    timer_entry a, b;
    const std::uint64_t a_at = std::uint64_t{1} << 36;
    const std::uint64_t b_at = std::uint64_t{3} << 36;
    CHECK(w.insert(&a, a_at));
    CHECK(w.insert(&b, b_at));
    std::vector<std::pair<char, std::uint64_t>> fired;
    for (int round = 0; round < 64 && !w.empty(); ++round) {
        timer_list expired;
        w.poll(w.next_expiration()->deadline, expired);
        for (timer_entry* e : drain(expired)) {
            const std::uint64_t target = e == &a ? a_at : b_at;
            if (target > w.elapsed()) {
                CHECK(w.insert(e, target)); // clamped: not due yet, go round again
            } else {
                fired.emplace_back(e == &a ? 'a' : 'b', w.elapsed());
            }
        }
    }
    CHECK(fired == std::vector<std::pair<char, std::uint64_t>>{{'a', a_at}, {'b', b_at}});
}
