#pragma once
// The "uring-loop" echo server: a hand-written io_uring loop, no runtime. It is epoll-loop's
// counterpart for the completion model (echo_loop.hpp): what the same 2 threads achieve when the
// kernel accepts, receives into buffers of its choosing and sends, with nothing between the
// application and io_uring.
//
// Two threads, each with a ring of its own (4096 submission entries) set up with the first flags
// the kernel accepts of SINGLE_ISSUER|DEFER_TASKRUN (completions run only when the ring's one
// thread waits for them, so they never interrupt it), COOP_TASKRUN, none. Thread 0 keeps one
// multishot accept on the listening socket and deals the connections to the two loops in turn;
// those of loop 1 go over in an IORING_OP_MSG_RING, a completion on ring 1 whose result is the fd
// (should the hand-over fail, loop 0 serves the connection itself).
//
// A connection has one multishot recv, which takes its buffers from its loop's provided-buffer
// ring: 1024 buffers of 2 KiB, so 2 MiB a loop, all of it resident whatever the number of
// connections, since the kernel takes the buffers in turn. Each buffer received is sent back from
// where it is and goes back to the ring when its send completes. A connection has one send in
// flight at most, so its bytes go back in order: what arrives meanwhile waits in its queue (a list
// threaded through the loop's per-buffer table), and a short send is followed by one for the rest.
// A connection holding `pause_at` buffers has its recv cancelled until its queue is empty, so that
// a peer that does not read cannot take every buffer of the loop.
//
// A recv ends (a completion without IORING_CQE_F_MORE) at EOF, on an error, when cancelled (for a
// pause it is re-armed when the queue is empty), when the kernel ends it for its own reasons (it
// is re-armed at once), or when the buffer ring is empty (-ENOBUFS; the connection waits in the
// loop's starved list, and is re-armed once buffers have come back). After EOF or an error, the
// connection is closed once its queued data has been sent; after a failed send, at once (its
// queued data dropped, its recv cancelled). Accept failures such as EMFILE end the multishot
// accept; a timeout re-arms it 1 ms later (the count goes to stderr once).
//
// User data: a connection's recv and send carry its address (8-aligned) with the op in the low 3
// bits; the other operations carry their op alone, except the MSG_RING's own completion on ring
// 0, which carries the fd being handed over above the op bits.
//
// It needs Linux 6.0 (multishot recv with provided buffers; 5.19 for buffer rings, multishot
// accept and MSG_RING): without, it throws before accepting anything, saying what is missing.
// SIGTERM keeps its default action. The serve_fn contract is at the top of echo_server.hpp.

#include <fmt/format.h>
#include <liburing.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

namespace suite {

namespace detail::uring_loop {

inline constexpr int loops = 2;
inline constexpr unsigned sq_entries = 4096;
inline constexpr unsigned buffer_count = 1024; // per loop; a power of two (the ring's size)
inline constexpr unsigned buffer_size = 2048;
inline constexpr std::uint16_t buffer_group = 0;
inline constexpr unsigned pause_at = 8;            // queued buffers that stop a connection's recv
inline constexpr std::uint16_t no_buffer = 0xffff; // end of a connection's queue

/// What a completion is for: the low 3 bits of its user data.
enum class op : std::uint64_t {
    ignore = 0,       // a cancel
    recv = 1,         // a connection's multishot recv; upper bits: the connection
    send = 2,         // a connection's send; upper bits: the connection
    accept = 3,       // the multishot accept (loop 0)
    accept_retry = 4, // the 1 ms timeout after an accept failure (loop 0)
    handoff = 5,      // a connection from loop 0 (loop 1): the result is its fd
    handoff_sent = 6, // the MSG_RING that handed it over (loop 0); upper bits: the fd
    probe = 7,        // probe_multishot_recv's recv
};
inline constexpr std::uint64_t op_mask = 7;
inline constexpr unsigned fd_shift = 3;

/// One connection. Its queue holds the buffers received and not yet sent back, oldest first;
/// the head is the one being sent, `sent` bytes of it already gone.
struct alignas(8) connection {
    int fd = -1;
    std::uint16_t head = no_buffer;
    std::uint16_t tail = no_buffer;
    std::uint32_t sent = 0;
    unsigned queued = 0;
    bool recv_armed = false;   // its multishot recv is in flight
    bool sending = false;      // its send is in flight
    bool starved = false;      // in the loop's starved list (its recv got -ENOBUFS)
    bool paused = false;       // no recv until its queue is empty
    bool reading_done = false; // EOF or an error: no recv any more
    bool failed = false;       // a send failed: what still arrives is dropped
};

[[noreturn]] inline void fail(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), "uring loop: " + what);
}

inline std::uint64_t pack(connection* c, op o) {
    return reinterpret_cast<std::uintptr_t>(c) | static_cast<std::uint64_t>(o);
}

/// An anonymous mapping: page-aligned, as the buffer ring must be, and resident only where
/// touched.
struct mapping {
    void* addr = MAP_FAILED;
    std::size_t bytes = 0;

    explicit mapping(std::size_t n) : bytes(n) {
        addr = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (addr == MAP_FAILED)
            fail(errno, "mmap");
    }
    mapping(const mapping&) = delete;
    mapping& operator=(const mapping&) = delete;
    ~mapping() { ::munmap(addr, bytes); }
};

/// The ring itself, torn down before the memory it uses (declared after the mappings in `loop`).
struct ring_owner {
    io_uring ring{};
    unsigned flags = 0; // the setup flags the kernel accepted

    ring_owner() {
        const unsigned wanted[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                   IORING_SETUP_COOP_TASKRUN, 0};
        int rc = -EINVAL;
        for (const unsigned f : wanted) {
            io_uring_params p{};
            p.flags = f;
            rc = io_uring_queue_init_params(sq_entries, &ring, &p);
            if (rc != -EINVAL) {
                flags = f;
                break;
            }
        }
        if (rc < 0)
            fail(-rc, "io_uring_setup");
    }
    ring_owner(const ring_owner&) = delete;
    ring_owner& operator=(const ring_owner&) = delete;
    ~ring_owner() { io_uring_queue_exit(&ring); }
};

/// One loop: a ring, its buffers and its connections. Used by the thread that made it only (the
/// ring may be SINGLE_ISSUER).
class loop {
public:
    loop() : buffer_ring_(buffer_count * sizeof(io_uring_buf)), data_(buffer_count * buffer_size) {
        check_opcodes();
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(buffer_ring_.addr);
        reg.ring_entries = buffer_count;
        reg.bgid = buffer_group;
        if (const int rc = io_uring_register_buf_ring(&ring(), &reg, 0); rc < 0) {
            fail(-rc, rc == -EINVAL ? "the kernel has no provided-buffer rings (Linux 5.19)"
                                    : "io_uring_register_buf_ring");
        }
        br_ = static_cast<io_uring_buf_ring*>(buffer_ring_.addr);
        io_uring_buf_ring_init(br_);
        for (unsigned b = 0; b < buffer_count; ++b) {
            io_uring_buf_ring_add(br_, buffer(b), buffer_size, static_cast<std::uint16_t>(b),
                                  io_uring_buf_ring_mask(buffer_count), static_cast<int>(b));
        }
        io_uring_buf_ring_advance(br_, static_cast<int>(buffer_count));
    }
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;

    int ring_fd() const { return owner_.ring.ring_fd; }

    /// Checks that recv takes the multishot flag with provided buffers (Linux 6.0) on a socket
    /// pair: an older kernel rejects the flag (-EINVAL), or ignores it and completes once.
    void probe_multishot_recv() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            fail(errno, "socketpair");
        arm_recv_on(sv[0], static_cast<std::uint64_t>(op::probe));
        const char byte = 'x';
        bool multishot = false;
        int err = 0;
        int rc = ::write(sv[1], &byte, 1) == 1 ? io_uring_submit(&ring()) : -errno;
        for (bool more = rc >= 0; more;) {
            io_uring_cqe* cqe = nullptr;
            __kernel_timespec timeout{};
            timeout.tv_sec = 2;
            rc = io_uring_wait_cqe_timeout(&ring(), &cqe, &timeout);
            if (rc == -EINTR)
                continue;
            if (rc < 0)
                break;
            const int res = cqe->res;
            const unsigned flags = cqe->flags;
            io_uring_cqe_seen(&ring(), cqe);
            if ((flags & IORING_CQE_F_BUFFER) != 0)
                take_and_give_back(flags);
            more = (flags & IORING_CQE_F_MORE) != 0;
            if (res > 0 && !multishot) {
                multishot = more;
                if (more) {
                    ::close(sv[1]); // EOF ends the recv
                    sv[1] = -1;
                }
            } else if (res < 0) {
                err = -res;
            }
        }
        ::close(sv[0]);
        if (sv[1] >= 0)
            ::close(sv[1]);
        if (rc < 0)
            fail(-rc, rc == -ETIME ? "multishot recv probe: no completion in 2 s" : "recv probe");
        if (!multishot) {
            fail(err != 0 ? err : ENOTSUP,
                 "the kernel has no multishot recv with provided buffers (Linux 6.0)");
        }
    }

    /// Makes this loop (loop 0) accept on `listen_fd`, handing every other connection to the
    /// loop of ring `peer_ring_fd`.
    void accept_on(int listen_fd, int peer_ring_fd) {
        listen_fd_ = listen_fd;
        peer_ring_fd_ = peer_ring_fd;
        arm_accept();
    }

    [[noreturn]] void run() {
        std::vector<io_uring_cqe*> cqes(256);
        for (;;) {
            rearm_starved();
            const int rc = io_uring_submit_and_wait(&ring(), 1);
            if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
                fail(-rc, "io_uring_submit_and_wait");
            // Completions handled here may submit, and so post more: peek until none is left.
            for (;;) {
                const unsigned n = io_uring_peek_batch_cqe(&ring(), cqes.data(),
                                                           static_cast<unsigned>(cqes.size()));
                if (n == 0)
                    break;
                for (unsigned i = 0; i < n; ++i)
                    complete(*cqes[i]);
                io_uring_cq_advance(&ring(), n);
            }
        }
    }

private:
    io_uring& ring() { return owner_.ring; }
    char* buffer(unsigned b) const {
        return static_cast<char*>(data_.addr) + static_cast<std::size_t>(b) * buffer_size;
    }

    void check_opcodes() {
        io_uring_probe* probe = io_uring_get_probe_ring(&ring());
        if (probe == nullptr)
            fail(ENOSYS, "io_uring has no opcode probe (Linux 5.6)");
        const std::pair<int, const char*> needed[] = {
            {IORING_OP_ACCEPT, "ACCEPT"},
            {IORING_OP_RECV, "RECV"},
            {IORING_OP_SEND, "SEND"},
            {IORING_OP_TIMEOUT, "TIMEOUT"},
            {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
            {IORING_OP_MSG_RING, "MSG_RING (Linux 5.18)"},
        };
        std::string missing;
        for (const auto& [code, name] : needed) {
            if (io_uring_opcode_supported(probe, code) == 0)
                missing += fmt::format("{}IORING_OP_{}", missing.empty() ? "" : ", ", name);
        }
        io_uring_free_probe(probe);
        if (!missing.empty())
            fail(ENOSYS, "io_uring lacks " + missing);
    }

    io_uring_sqe* get_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring());
        if (sqe == nullptr) {
            // The submission queue is full: hand it to the kernel first.
            submit_now();
            sqe = io_uring_get_sqe(&ring());
            if (sqe == nullptr)
                fail(EBUSY, "no free submission queue entry");
        }
        return sqe;
    }

    void submit_now() {
        const int rc = io_uring_submit(&ring());
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            fail(-rc, "io_uring_submit");
    }

    void complete(const io_uring_cqe& cqe) {
        auto* c = reinterpret_cast<connection*>(cqe.user_data & ~op_mask);
        switch (static_cast<op>(cqe.user_data & op_mask)) {
        case op::recv:
            on_recv(c, cqe.res, cqe.flags);
            break;
        case op::send:
            on_send(c, cqe.res);
            break;
        case op::accept:
            on_accept(cqe.res, cqe.flags);
            break;
        case op::accept_retry:
            arm_accept();
            break;
        case op::handoff:
            add(cqe.res);
            break;
        case op::handoff_sent:
            if (cqe.res < 0)
                add(static_cast<int>(cqe.user_data >> fd_shift));
            break;
        case op::ignore:
        case op::probe:
            break;
        }
    }

    // ---- accepting (loop 0) ----

    void arm_accept() {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(op::accept));
    }

    void on_accept(int res, unsigned flags) {
        bool later = false;
        if (res >= 0) {
            deal(res);
        } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
            // The connection stays queued on the listening socket; try again shortly.
            if (accept_failures_++ == 0) {
                fmt::print(stderr, "uring loop: accept: {} (retrying)\n",
                           std::generic_category().message(-res));
            }
            later = true;
        } else if (res != -EINTR && res != -ECONNABORTED && res != -EPROTO && res != -EAGAIN) {
            fail(-res, "multishot accept");
        }
        if ((flags & IORING_CQE_F_MORE) != 0)
            return;
        if (!later) {
            arm_accept();
            return;
        }
        retry_after_.tv_sec = 0;
        retry_after_.tv_nsec = 1'000'000;
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_timeout(sqe, &retry_after_, 0, 0);
        io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(op::accept_retry));
    }

    /// Serves `fd` here or hands it to the other loop, in turn.
    void deal(int fd) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (dealt_++ % loops == 0) {
            add(fd);
            return;
        }
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_msg_ring(sqe, peer_ring_fd_, static_cast<unsigned>(fd),
                               static_cast<std::uint64_t>(op::handoff), 0);
        io_uring_sqe_set_data64(sqe, (static_cast<std::uint64_t>(fd) << fd_shift) |
                                         static_cast<std::uint64_t>(op::handoff_sent));
    }

    // ---- connections ----

    void add(int fd) {
        auto* c = new connection;
        c->fd = fd;
        arm_recv(c);
    }

    void arm_recv_on(int fd, std::uint64_t user_data) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffer_group;
        io_uring_sqe_set_data64(sqe, user_data);
    }

    void arm_recv(connection* c) {
        arm_recv_on(c->fd, pack(c, op::recv));
        c->recv_armed = true;
    }

    /// Cancels c's recv. Submitted at once, while `c`, whose address is in the recv's user data,
    /// is alive: no later connection at the same address can be hit.
    void cancel_recv(connection* c) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, pack(c, op::recv), 0);
        io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(op::ignore));
        submit_now();
    }

    /// Counts the buffer of a completion as taken from the ring and returns its id.
    std::uint16_t take(unsigned cqe_flags) {
        ++held_;
        return static_cast<std::uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    }

    void give_back(std::uint16_t b) {
        io_uring_buf_ring_add(br_, buffer(b), buffer_size, b, io_uring_buf_ring_mask(buffer_count),
                              0);
        io_uring_buf_ring_advance(br_, 1);
        --held_;
    }

    void take_and_give_back(unsigned cqe_flags) { give_back(take(cqe_flags)); }

    void on_recv(connection* c, int res, unsigned flags) {
        if ((flags & IORING_CQE_F_BUFFER) != 0) {
            const std::uint16_t b = take(flags);
            if (res > 0 && !c->failed)
                enqueue(c, b, static_cast<std::uint32_t>(res));
            else
                give_back(b);
        }
        if ((flags & IORING_CQE_F_MORE) != 0)
            return;
        c->recv_armed = false;
        if (c->failed) {
            close_if_idle(c);
        } else if (res > 0 || res == -ECANCELED) {
            // Ended by the kernel with data, or by a pause's cancel: go on unless still paused.
            if (!c->paused)
                arm_recv(c);
        } else if (res == -ENOBUFS) {
            if (!c->paused) {
                c->starved = true;
                starved_.push_back(c);
            }
        } else {
            c->reading_done = true; // EOF or an error
            close_if_idle(c);
        }
    }

    void enqueue(connection* c, std::uint16_t b, std::uint32_t length) {
        chunks_[b] = {length, no_buffer};
        if (c->tail == no_buffer)
            c->head = b;
        else
            chunks_[c->tail].next = b;
        c->tail = b;
        if (++c->queued >= pause_at && !c->paused) {
            c->paused = true;
            if (c->recv_armed)
                cancel_recv(c);
        }
        if (!c->sending)
            send_head(c);
    }

    void send_head(connection* c) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_send(sqe, c->fd, buffer(c->head) + c->sent, chunks_[c->head].length - c->sent,
                           MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, pack(c, op::send));
        c->sending = true;
    }

    void on_send(connection* c, int res) {
        c->sending = false;
        if (res <= 0) {
            fail_connection(c);
            return;
        }
        c->sent += static_cast<std::uint32_t>(res);
        const chunk head = chunks_[c->head];
        if (c->sent < head.length) {
            send_head(c); // a short send: the rest
            return;
        }
        give_back(c->head);
        c->head = head.next;
        if (c->head == no_buffer)
            c->tail = no_buffer;
        c->sent = 0;
        --c->queued;
        if (c->head != no_buffer) {
            send_head(c);
        } else if (c->reading_done) {
            close_if_idle(c);
        } else if (c->paused) {
            c->paused = false;
            if (!c->recv_armed && !c->starved)
                arm_recv(c);
        }
    }

    /// A send failed: drops what is queued, stops the recv, closes once nothing is in flight.
    void fail_connection(connection* c) {
        c->failed = true;
        c->reading_done = true;
        while (c->head != no_buffer) {
            const std::uint16_t next = chunks_[c->head].next;
            give_back(c->head);
            c->head = next;
        }
        c->tail = no_buffer;
        c->queued = 0;
        if (c->recv_armed)
            cancel_recv(c);
        close_if_idle(c);
    }

    void close_if_idle(connection* c) {
        if (c->recv_armed || c->sending || c->starved || !c->reading_done)
            return;
        ::close(c->fd);
        delete c;
    }

    /// Re-arms starved recvs, as many as there are buffers in the ring.
    void rearm_starved() {
        unsigned free = buffer_count - held_;
        while (free > 0 && !starved_.empty()) {
            connection* c = starved_.front();
            starved_.pop_front();
            c->starved = false;
            if (c->reading_done) {
                close_if_idle(c);
            } else if (!c->paused) {
                arm_recv(c);
                --free;
            }
        }
    }

    /// A queued buffer: its length and the next buffer in the same connection's queue.
    struct chunk {
        std::uint32_t length;
        std::uint16_t next;
    };

    mapping buffer_ring_;
    mapping data_;
    ring_owner owner_; // after the mappings: torn down first
    io_uring_buf_ring* br_ = nullptr;
    std::vector<chunk> chunks_ = std::vector<chunk>(buffer_count); // by buffer id
    unsigned held_ = 0;                                            // buffers out of the ring
    std::deque<connection*> starved_; // recvs waiting for buffers, oldest first
    int listen_fd_ = -1;              // loop 0 only, from here on
    int peer_ring_fd_ = -1;
    unsigned dealt_ = 0;
    unsigned long accept_failures_ = 0;
    __kernel_timespec retry_after_{};
};

/// Thread 1: sets up its loop, says how it went through `ready` (its ring's fd or why not), and
/// runs it. A failure after that ends the process.
inline void run_other(std::promise<int> ready) {
    std::optional<loop> l;
    try {
        l.emplace();
    } catch (...) {
        ready.set_exception(std::current_exception());
        return;
    }
    ready.set_value(l->ring_fd());
    try {
        l->run();
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo server: {}\n", e.what());
    } catch (...) {
        std::fputs("echo server: unknown exception\n", stderr);
    }
    std::_Exit(1);
}

} // namespace detail::uring_loop

/// The "uring-loop" server: see the top of this file.
[[noreturn]] inline void serve_uring_loop(int listen_fd) {
    namespace ul = detail::uring_loop;
    ul::loop first;
    first.probe_multishot_recv();
    std::promise<int> ready;
    std::future<int> other_ring = ready.get_future();
    std::thread other(ul::run_other, std::move(ready));
    int other_fd = -1;
    try {
        other_fd = other_ring.get();
    } catch (...) {
        other.join();
        throw;
    }
    other.detach(); // ends with the process (SIGTERM)
    first.accept_on(listen_fd, other_fd);
    first.run();
}

} // namespace suite
