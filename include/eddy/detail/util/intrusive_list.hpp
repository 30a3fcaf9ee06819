#pragma once
//! An intrusive doubly-linked FIFO list: the nodes live inside the objects they link (usually an
//! awaiter in a suspended coroutine frame), so queueing a waiter allocates nothing and unlinking
//! one from the middle (a cancelled waiter) is O(1).
//!
//! `T` derives from `list_node<T>` (once per list it can be in, with distinct tags). The list does
//! not own its elements and is not thread-safe: the primitive that owns it guards it with its lock.

#include <eddy/config.hpp>

#include <cstddef>

namespace eddy::detail {

struct default_list_tag;

template <class T, class Tag = default_list_tag>
class list_node {
public:
    list_node() noexcept = default;
    list_node(const list_node&) = delete;
    list_node& operator=(const list_node&) = delete;

    /// True while the node is in a list.
    [[nodiscard]] bool linked() const noexcept { return linked_; }

private:
    template <class, class>
    friend class intrusive_list;

    list_node* prev_ = nullptr;
    list_node* next_ = nullptr;
    bool linked_ = false;
};

template <class T, class Tag = default_list_tag>
class intrusive_list {
    using node = list_node<T, Tag>;

public:
    intrusive_list() noexcept = default;
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    [[nodiscard]] T* front() const noexcept { return head_ != nullptr ? elem(head_) : nullptr; }
    [[nodiscard]] T* back() const noexcept { return tail_ != nullptr ? elem(tail_) : nullptr; }

    /// The element after `e` (nullptr at the end).
    [[nodiscard]] static T* next(T* e) noexcept {
        node* n = static_cast<node*>(e)->next_;
        return n != nullptr ? elem(n) : nullptr;
    }

    void push_back(T* e) noexcept {
        node* n = e;
        EDDY_ASSERT(!n->linked_);
        n->next_ = nullptr;
        n->prev_ = tail_;
        if (tail_ != nullptr) {
            tail_->next_ = n;
        } else {
            head_ = n;
        }
        tail_ = n;
        n->linked_ = true;
        ++size_;
    }

    void push_front(T* e) noexcept {
        node* n = e;
        EDDY_ASSERT(!n->linked_);
        n->prev_ = nullptr;
        n->next_ = head_;
        if (head_ != nullptr) {
            head_->prev_ = n;
        } else {
            tail_ = n;
        }
        head_ = n;
        n->linked_ = true;
        ++size_;
    }

    /// Unlinks `e`, which must be in this list. O(1).
    void remove(T* e) noexcept {
        node* n = e;
        EDDY_ASSERT(n->linked_);
        if (n->prev_ != nullptr) {
            n->prev_->next_ = n->next_;
        } else {
            head_ = n->next_;
        }
        if (n->next_ != nullptr) {
            n->next_->prev_ = n->prev_;
        } else {
            tail_ = n->prev_;
        }
        n->prev_ = n->next_ = nullptr;
        n->linked_ = false;
        --size_;
    }

    [[nodiscard]] T* pop_front() noexcept {
        if (head_ == nullptr)
            return nullptr;
        T* e = elem(head_);
        remove(e);
        return e;
    }

    /// Moves every element of `other` to the end of this list, in order. O(1).
    void splice_back(intrusive_list& other) noexcept {
        if (other.head_ == nullptr)
            return;
        if (tail_ != nullptr) {
            tail_->next_ = other.head_;
            other.head_->prev_ = tail_;
        } else {
            head_ = other.head_;
        }
        tail_ = other.tail_;
        size_ += other.size_;
        other.head_ = other.tail_ = nullptr;
        other.size_ = 0;
    }

private:
    static T* elem(node* n) noexcept { return static_cast<T*>(n); }

    node* head_ = nullptr;
    node* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace eddy::detail
