#include <eddy/detail/context.hpp>
#include <eddy/detail/io/uring_driver.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

// The driver on its own, with the calling thread posing as worker 0 or 1 (the ring an operation
// goes to is the submitting thread's `context().worker_index`).

namespace {

using eddy::detail::uring_completion;
using eddy::detail::uring_driver;
using namespace std::chrono_literals;

/// Sets this thread's worker index for the scope.
class as_worker {
public:
    explicit as_worker(std::uint32_t index)
        : saved_(std::exchange(eddy::detail::context().worker_index, index)) {}
    as_worker(const as_worker&) = delete;
    as_worker& operator=(const as_worker&) = delete;
    ~as_worker() { eddy::detail::context().worker_index = saved_; }

private:
    std::uint32_t saved_;
};

struct socket_pair {
    int fds[2] = {-1, -1};
    socket_pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0); }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
    ~socket_pair() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

bool is_done(const uring_completion& c) {
    return c.state.load(eddy::detail::memory_order_acquire) == uring_completion::done;
}

/// Submits a RECV of `fd` into `buf` as worker `worker`.
template <std::size_t N>
void submit_recv(uring_driver& d, uring_completion& c, int fd, std::array<char, N>& buf,
                 std::uint32_t worker) {
    as_worker w(worker);
    d.submit(c, [fd, &buf](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, buf.data(), N, 0); });
    d.flush();
}

} // namespace

TEST_CASE("uring driver: one ring per worker, at least one", "[io][uring]") {
    CHECK(uring_driver(2).ring_count() == 2);
    CHECK(uring_driver(0).ring_count() == 1);
}

TEST_CASE("uring driver: a completion on another worker's ring ends the driver's wait",
          "[io][uring]") {
    uring_driver d(2);
    socket_pair sp;
    uring_completion c;
    std::array<char, 8> buf{};
    submit_recv(d, c, sp.fds[0], buf, 1);
    CHECK(c.ring != nullptr);
    CHECK_FALSE(is_done(c));

    std::thread writer([&] {
        std::this_thread::sleep_for(5ms);
        REQUIRE(::write(sp.fds[1], "x", 1) == 1);
    });
    // The waiting thread (worker 0) sleeps on the eventfd; the RECV completes on ring 1, which
    // signals it, long before the timeout.
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10 && !is_done(c); ++i)
        d.wait(10s);
    const auto waited = std::chrono::steady_clock::now() - start;
    writer.join();
    REQUIRE(is_done(c));
    CHECK(c.res == 1);
    CHECK(buf[0] == 'x');
    CHECK(waited < 9s);
}

TEST_CASE("uring driver: an operation cancels on its own ring from any thread", "[io][uring]") {
    uring_driver d(2);
    socket_pair sp;
    uring_completion c;
    std::array<char, 8> buf{};
    submit_recv(d, c, sp.fds[0], buf, 1);
    {
        as_worker w(0);
        d.cancel(c); // returns once the cancelled RECV's completion was reaped
    }
    REQUIRE(is_done(c));
    CHECK(c.res == -ECANCELED);
    // The socket is still usable: nothing was consumed.
    REQUIRE(::write(sp.fds[1], "y", 1) == 1);
    uring_completion again;
    submit_recv(d, again, sp.fds[0], buf, 0);
    for (int i = 0; i < 10 && !is_done(again); ++i)
        d.wait(1s);
    REQUIRE(is_done(again));
    CHECK(again.res == 1);
    CHECK(buf[0] == 'y');
}

TEST_CASE("uring driver: an operation queued but not submitted is withdrawn on its ring",
          "[io][uring]") {
    uring_driver d(2);
    socket_pair sp;
    uring_completion c;
    std::array<char, 8> buf{};
    {
        as_worker w(1);
        d.submit(c, [fd = sp.fds[0], &buf](io_uring_sqe* sqe) {
            io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), 0);
        });
    }
    d.cancel(c); // not flushed yet: it never reaches the kernel
    REQUIRE(is_done(c));
    CHECK(c.res == -ECANCELED);
    d.flush(); // the withdrawn entry is a no-op now
    REQUIRE(::write(sp.fds[1], "z", 1) == 1);
    char got = 0;
    CHECK(::read(sp.fds[0], &got, 1) == 1);
    CHECK(got == 'z');
}
