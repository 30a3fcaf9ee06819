// The smallest eddy program: what a consumer of the installed or vendored package compiles.
#include <eddy/eddy.hpp>

eddy::task<int> answer() {
    co_return 42;
}

int main() {
    return eddy::run(answer()) == 42 ? 0 : 1;
}
