#pragma once
//! `eddy::net::read_half` / `write_half`: the two directions of a stream socket (TCP or Unix),
//! owned separately so two tasks can read and write at the same time.
//!
//! ```cpp
//! auto [rd, wr] = std::move(stream).split();
//! eddy::spawn(pump(std::move(rd)));     // reads in one task
//! co_await wr.write_all("hello");       // writes in another
//! ```
//!
//! The halves share the socket; it closes when both are gone. Dropping the write half shuts the
//! writing direction down (the peer sees end of stream), as in Tokio. `reunite` puts them back
//! together. One task at a time per half: two concurrent reads on one half are a logic error.

#include <eddy/config.hpp>

#include <eddy/net/socket_address.hpp>
#include <eddy/result.hpp>

#include <eddy/detail/io/source.hpp>
#include <eddy/detail/net/stream.hpp>

#include <memory>
#include <utility>

#include <sys/socket.h>

namespace eddy::net {

class write_half;

class read_half : public eddy::detail::stream_reader<read_half> {
public:
    explicit read_half(std::shared_ptr<eddy::detail::io_source> s) noexcept
        : source_(std::move(s)) {}

    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(source_->fd());
    }
    [[nodiscard]] result<socket_address> peer_address() const noexcept {
        return peer_address_of(source_->fd());
    }
    /// True when both halves came from the same `split`.
    [[nodiscard]] bool is_pair_of(const write_half& w) const noexcept;

    [[nodiscard]] eddy::detail::io_source& source() noexcept { return *source_; }
    [[nodiscard]] const std::shared_ptr<eddy::detail::io_source>& shared() const noexcept {
        return source_;
    }

private:
    std::shared_ptr<eddy::detail::io_source> source_;
};

class write_half : public eddy::detail::stream_writer<write_half> {
public:
    explicit write_half(std::shared_ptr<eddy::detail::io_source> s) noexcept
        : source_(std::move(s)) {}
    write_half(write_half&&) noexcept = default;
    write_half& operator=(write_half&& other) noexcept {
        if (this != &other) {
            shutdown_if_owner();
            source_ = std::move(other.source_);
        }
        return *this;
    }
    ~write_half() { shutdown_if_owner(); }

    [[nodiscard]] result<socket_address> local_address() const noexcept {
        return local_address_of(source_->fd());
    }
    [[nodiscard]] result<socket_address> peer_address() const noexcept {
        return peer_address_of(source_->fd());
    }

    [[nodiscard]] eddy::detail::io_source& source() noexcept { return *source_; }

    /// Gives up the shared socket without shutting the writing direction down (`reunite`).
    [[nodiscard]] std::shared_ptr<eddy::detail::io_source> release() noexcept {
        return std::move(source_);
    }
    [[nodiscard]] const std::shared_ptr<eddy::detail::io_source>& shared() const noexcept {
        return source_;
    }

private:
    void shutdown_if_owner() noexcept {
        if (source_ && source_->is_open())
            ::shutdown(source_->fd(), SHUT_WR);
    }

    std::shared_ptr<eddy::detail::io_source> source_;
};

inline bool read_half::is_pair_of(const write_half& w) const noexcept {
    return source_ == w.shared();
}

} // namespace eddy::net
