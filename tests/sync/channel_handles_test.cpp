#include <eddy/sync/broadcast.hpp>
#include <eddy/sync/mpsc.hpp>
#include <eddy/sync/oneshot.hpp>
#include <eddy/sync/watch.hpp>

#include <catch2/catch.hpp>

#include <type_traits>
#include <utility>

namespace {

/// Whether `H` is copyable (`copyable`) or move-only, with nothrow moves, default construction
/// and destruction.
template <class H, bool copyable>
constexpr bool handle_kind =
    std::is_copy_constructible_v<H> == copyable&& std::is_copy_assignable_v<H> ==
    copyable&& std::is_nothrow_move_constructible_v<H>&& std::is_nothrow_move_assignable_v<H>&&
        std::is_nothrow_default_constructible_v<H>&& std::is_nothrow_destructible_v<H>;

static_assert(handle_kind<eddy::mpsc::sender<int>, true>);
static_assert(handle_kind<eddy::mpsc::unbounded_sender<int>, true>);
static_assert(handle_kind<eddy::mpsc::receiver<int>, false>);
static_assert(handle_kind<eddy::mpsc::permit<int>, false>);
static_assert(handle_kind<eddy::oneshot::sender<int>, false>);
static_assert(handle_kind<eddy::oneshot::receiver<int>, false>);
static_assert(handle_kind<eddy::watch::sender<int>, false>);
static_assert(handle_kind<eddy::watch::receiver<int>, true>);
static_assert(handle_kind<eddy::broadcast::sender<int>, true>);
static_assert(handle_kind<eddy::broadcast::receiver<int>, false>);

} // namespace

TEST_CASE("channel handles: copies count, moves empty the source, self-assignment is harmless",
          "[mpsc][watch][broadcast]") {
    auto [tx, rx] = eddy::mpsc::unbounded_channel<int>();
    {
        auto copy = tx;
        auto& same = copy;
        copy = same;
        copy = std::move(same);
        { auto gone = std::move(tx); } // `copy` keeps the channel open
        CHECK_FALSE(tx.valid());
        CHECK(copy.send(1).has_value());
    }
    CHECK(rx.try_recv().value() == 1);
    CHECK(rx.try_recv().error() == eddy::errc::closed); // the last sender is gone

    auto [wtx, wrx] = eddy::watch::channel<int>(0);
    auto wrx2 = wrx;
    CHECK(wtx.receiver_count() == 2);
    wrx2 = wrx;
    CHECK(wtx.receiver_count() == 2);
    { auto gone = std::move(wrx2); }
    CHECK(wtx.receiver_count() == 1);

    auto [btx, brx] = eddy::broadcast::channel<int>(2);
    auto btx2 = btx;
    btx = btx2;
    { auto gone = std::move(btx); }
    CHECK(btx2.send(5).value() == 1);
    CHECK(brx.try_recv().value() == 5);
}
