// Catch2 (v2) entry point for eddy_tests: every tests/**/*_test.cpp links into this one binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
