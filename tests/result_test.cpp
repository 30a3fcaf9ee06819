#include <eddy/result.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <system_error>

TEST_CASE("result holds a value or an error code", "[result]") {
    eddy::result<int> ok = 5;
    REQUIRE(ok.has_value());
    CHECK(*ok == 5);
    CHECK(ok.value() == 5);
    CHECK_FALSE(ok.error());

    eddy::result<int> bad = eddy::errc::timed_out;
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == eddy::errc::timed_out);
    CHECK(bad.value_or(9) == 9);
    CHECK_THROWS_AS(bad.value(), std::system_error);
}

TEST_CASE("result supports move-only values and copies when it can", "[result]") {
    eddy::result<std::unique_ptr<int>> p = std::make_unique<int>(3);
    auto q = std::move(p);
    REQUIRE(q);
    CHECK(**q == 3);
    eddy::result<std::string> s = std::string("abc");
    eddy::result<std::string> t = s;
    CHECK(*t == "abc");
    t = eddy::result<std::string>(eddy::errc::closed);
    CHECK(t.error() == eddy::errc::closed);
    t = s;
    CHECK(t->size() == 3);
}

TEST_CASE("result<void> carries only success or an error", "[result]") {
    eddy::result<void> ok;
    CHECK(ok);
    CHECK_NOTHROW(ok.value());
    eddy::result<void> bad = std::make_error_code(std::errc::connection_reset);
    CHECK_FALSE(bad);
    CHECK(bad.error() == std::errc::connection_reset);
    CHECK_THROWS_AS(bad.value(), std::system_error);
}

TEST_CASE("eddy error codes have their own category and map to standard conditions", "[result]") {
    std::error_code ec = eddy::errc::timed_out;
    CHECK(std::string(ec.category().name()) == "eddy");
    CHECK(ec.message() == "operation timed out");
    CHECK(ec == std::errc::timed_out);
    CHECK(std::error_code(eddy::errc::cancelled) == std::errc::operation_canceled);
    CHECK(std::error_code(eddy::errc::closed) != std::errc::timed_out);
    CHECK(std::error_code(eddy::errc::lagged).message() == "receiver lagged behind");
}
