#include <eddy/detail/util/intrusive_list.hpp>

#include <catch2/catch.hpp>

#include <vector>

namespace {

struct item : eddy::detail::list_node<item> {
    explicit item(int v) : value(v) {}
    int value;
};

std::vector<int> values(const eddy::detail::intrusive_list<item>& l) {
    std::vector<int> out;
    for (item* e = l.front(); e != nullptr; e = eddy::detail::intrusive_list<item>::next(e))
        out.push_back(e->value);
    return out;
}

} // namespace

TEST_CASE("intrusive_list keeps FIFO order and unlinks from anywhere", "[detail][intrusive_list]") {
    item a(1), b(2), c(3), d(4);
    eddy::detail::intrusive_list<item> l;
    CHECK(l.empty());
    l.push_back(&a);
    l.push_back(&b);
    l.push_back(&c);
    l.push_front(&d);
    CHECK(values(l) == std::vector<int>{4, 1, 2, 3});
    CHECK(l.size() == 4);

    l.remove(&b); // middle
    CHECK_FALSE(b.linked());
    CHECK(values(l) == std::vector<int>{4, 1, 3});
    l.remove(&d); // head
    l.remove(&c); // tail
    CHECK(values(l) == std::vector<int>{1});
    CHECK(l.front() == &a);
    CHECK(l.back() == &a);
    CHECK(l.pop_front() == &a);
    CHECK(l.empty());
    CHECK(l.pop_front() == nullptr);
}

TEST_CASE("intrusive_list splices another list to its end", "[detail][intrusive_list]") {
    item a(1), b(2), c(3);
    eddy::detail::intrusive_list<item> l, m;
    l.splice_back(m); // both empty
    CHECK(l.empty());
    m.push_back(&b);
    m.push_back(&c);
    l.splice_back(m); // into empty
    CHECK(values(l) == std::vector<int>{2, 3});
    m.push_back(&a);
    l.splice_back(m);
    CHECK(values(l) == std::vector<int>{2, 3, 1});
    CHECK(m.empty());
    CHECK(l.size() == 3);
}
