#include <eddy/detail/scheduler/inject_queue.hpp>
#include <eddy/detail/scheduler/multi_thread/local_queue.hpp>
#include <eddy/detail/task/header.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <thread>
#include <vector>

using eddy::detail::inject_queue;
using eddy::detail::local_queue;
using eddy::detail::task_header;

namespace {

// Stand-in tasks: the queues only move pointers around; these are never polled or freed.
struct fake_tasks {
    explicit fake_tasks(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            headers.emplace_back(0U);
        for (std::size_t i = 0; i < n; ++i)
            headers[i].set_id(i);
    }
    task_header* operator[](std::size_t i) { return &headers[i]; }
    std::deque<task_header> headers;
};

std::vector<std::uint64_t> drain(inject_queue& q) {
    std::vector<std::uint64_t> ids;
    while (task_header* t = q.pop())
        ids.push_back(t->id());
    return ids;
}

} // namespace

TEST_CASE("local queue pops in FIFO order", "[local_queue]") {
    local_queue<4> q;
    inject_queue inject;
    fake_tasks tasks(4);
    for (std::size_t i = 0; i < 4; ++i)
        CHECK(q.push_back(tasks[i], inject) == 0);
    CHECK(q.len() == 4);
    for (std::uint64_t i = 0; i < 4; ++i) {
        task_header* t = q.pop();
        REQUIRE(t != nullptr);
        CHECK(t->id() == i);
    }
    CHECK(q.pop() == nullptr);
    CHECK(q.is_empty());
}

TEST_CASE("a full local queue moves half of itself and the new task to the inject queue",
          "[local_queue]") {
    local_queue<4> q;
    inject_queue inject;
    fake_tasks tasks(5);
    for (std::size_t i = 0; i < 4; ++i)
        (void)q.push_back(tasks[i], inject);
    CHECK(q.push_back(tasks[4], inject) == 3);
    CHECK(drain(inject) == std::vector<std::uint64_t>{0, 1, 4});
    CHECK(q.len() == 2);
    CHECK(q.pop()->id() == 2);
    CHECK(q.pop()->id() == 3);
}

TEST_CASE("indices wrap around the ring many times", "[local_queue]") {
    local_queue<4> q;
    inject_queue inject;
    fake_tasks tasks(3);
    for (int round = 0; round < 10'000; ++round) {
        for (std::size_t i = 0; i < 3; ++i)
            (void)q.push_back(tasks[i], inject);
        for (std::uint64_t i = 0; i < 3; ++i)
            REQUIRE(q.pop()->id() == i);
    }
    CHECK(inject.len() == 0);
}

TEST_CASE("a thief steals half and runs one of them", "[local_queue]") {
    local_queue<8> victim;
    local_queue<8> thief;
    inject_queue inject;
    fake_tasks tasks(6);
    for (std::size_t i = 0; i < 6; ++i)
        (void)victim.push_back(tasks[i], inject);
    task_header* t = victim.steal_into(thief);
    REQUIRE(t != nullptr);
    CHECK(t->id() == 2); // stole 0,1,2: returns the last, queues the others
    CHECK(thief.len() == 2);
    CHECK(thief.pop()->id() == 0);
    CHECK(thief.pop()->id() == 1);
    CHECK(victim.len() == 3);
    CHECK(victim.pop()->id() == 3);
    local_queue<8> empty;
    CHECK(empty.steal_into(thief) == nullptr);
}

TEST_CASE("concurrent pops and steals see every task exactly once", "[local_queue]") {
    // Capacity 4 makes overflow, wrap-around and steal-vs-pop races frequent.
    constexpr std::size_t n = 200'000;
    fake_tasks tasks(n);
    std::vector<std::atomic<int>> seen(n);
    inject_queue inject;
    local_queue<4> owner;
    std::atomic<bool> done{false};

    auto thief = [&] {
        local_queue<4> mine;
        while (!done.load(std::memory_order_acquire) || owner.is_stealable()) {
            if (task_header* t = owner.steal_into(mine)) {
                seen[t->id()].fetch_add(1);
                while (task_header* u = mine.pop())
                    seen[u->id()].fetch_add(1);
            }
        }
    };
    std::thread t1(thief);
    std::thread t2(thief);
    for (std::size_t i = 0; i < n; ++i) {
        (void)owner.push_back(tasks[i], inject);
        if (i % 3 == 0) {
            if (task_header* t = owner.pop())
                seen[t->id()].fetch_add(1);
        }
    }
    while (task_header* t = owner.pop())
        seen[t->id()].fetch_add(1);
    done.store(true, std::memory_order_release);
    t1.join();
    t2.join();
    while (task_header* t = inject.pop())
        seen[t->id()].fetch_add(1);
    std::size_t wrong = 0;
    for (auto& s : seen)
        wrong += s.load() != 1 ? 1 : 0;
    CHECK(wrong == 0);
}
