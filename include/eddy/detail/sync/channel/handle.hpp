#pragma once
//! `handle<State, Ops>`: the owning pointer inside every channel handle (senders, receivers,
//! permits), so that each of them spells out only what owning its shared state means.
//!
//! `Ops::drop(State*)` gives up one share: it runs when a non-empty handle is destroyed or
//! assigned over. A copyable handle's `Ops` also has `copy(State*)`, which takes one more share
//! for a copy; without it the handle is move-only. A moved-from handle is empty and drops
//! nothing. Assignment takes the new state before the old one is dropped (copy and swap), so
//! self-assignment is harmless.
//!
//! The handle classes hold one as their only owning member and let the compiler write their
//! copy, move and destructor.

#include <eddy/config.hpp>

#include <utility>

namespace eddy::detail::channel {

template <class State, class Ops>
class handle {
    static constexpr bool copyable = requires(State * s) { Ops::copy(s); };

public:
    handle() noexcept = default;
    explicit handle(State* s) noexcept : s_(s) {}

    handle(const handle& other) noexcept requires copyable : s_(other.s_) {
        if (s_ != nullptr)
            Ops::copy(s_);
    }
    handle(handle&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}

    // Both assignments are spelled out (not one by-value operator) so that a move-only handle,
    // and a class holding one, is not copy-assignable.
    handle& operator=(const handle& other) noexcept requires copyable {
        handle copy(other);
        std::swap(s_, copy.s_);
        return *this;
    }
    handle& operator=(handle&& other) noexcept {
        handle taken(std::move(other));
        std::swap(s_, taken.s_);
        return *this;
    }
    ~handle() {
        if (s_ != nullptr)
            Ops::drop(s_);
    }

    [[nodiscard]] State* get() const noexcept { return s_; }

    /// Empties the handle without dropping: the caller now owns the share.
    [[nodiscard]] State* release() noexcept { return std::exchange(s_, nullptr); }

    friend bool operator==(const handle& a, const handle& b) noexcept { return a.s_ == b.s_; }

private:
    State* s_ = nullptr;
};

} // namespace eddy::detail::channel
