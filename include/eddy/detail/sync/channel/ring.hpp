#pragma once
//! `ring<T>`: a growable circular buffer, the message store of the channels.
//!
//! Owns the elements in [head, head + size) modulo the capacity, which is a power of two (or
//! zero before the first allocation). Not thread-safe: the channel that owns it guards it with
//! its lock. Growth is the only operation that allocates (and so the only one that can throw);
//! `push_back`/`push_front` into a ring with room never throw, because `T` must be nothrow
//! move-constructible.

#include <eddy/config.hpp>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace eddy::detail::channel {

template <class T>
class ring {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "eddy channels need a nothrow move-constructible message type");
    static_assert(std::is_nothrow_destructible_v<T>, "eddy channels need a noexcept destructor");

public:
    ring() noexcept = default;
    ring(ring&& other) noexcept
        : buf_(std::exchange(other.buf_, nullptr)),
          cap_(std::exchange(other.cap_, 0)),
          head_(std::exchange(other.head_, 0)),
          size_(std::exchange(other.size_, 0)) {}
    ring& operator=(ring&& other) noexcept {
        if (this != &other) {
            clear_and_free();
            buf_ = std::exchange(other.buf_, nullptr);
            cap_ = std::exchange(other.cap_, 0);
            head_ = std::exchange(other.head_, 0);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring() { clear_and_free(); }

    /// Exchanges the contents (and buffers) of two rings. O(1).
    void swap(ring& other) noexcept {
        std::swap(buf_, other.buf_);
        std::swap(cap_, other.cap_);
        std::swap(head_, other.head_);
        std::swap(size_, other.size_);
    }

    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

    /// Makes room for at least `n` elements in total. May throw `std::bad_alloc`; on throw the
    /// ring is unchanged.
    void reserve(std::size_t n) {
        if (n <= cap_)
            return;
        std::size_t cap = cap_ == 0 ? min_capacity : cap_;
        while (cap < n)
            cap *= 2;
        T* buf = static_cast<T*>(::operator new (cap * sizeof(T), std::align_val_t{alignof(T)}));
        for (std::size_t i = 0; i < size_; ++i) {
            T* from = slot(i);
            // SAFETY: slots [0, size_) hold constructed elements; each is moved once, then its
            // source destroyed, so every element lives in exactly one buffer at a time.
            ::new (static_cast<void*>(buf + i)) T(std::move(*from));
            from->~T();
        }
        free_buffer();
        buf_ = buf;
        cap_ = cap;
        head_ = 0;
    }

    /// Appends, growing if needed (may throw `std::bad_alloc`; then nothing changed).
    void push_back(T&& v) {
        if (size_ == cap_)
            reserve(size_ + 1);
        push_back_nogrow(std::move(v));
    }

    /// Appends into a ring that has room. Never throws.
    void push_back_nogrow(T&& v) noexcept {
        EDDY_ASSERT(size_ < cap_);
        // SAFETY: size_ < cap_, so the slot after the last element is free storage.
        ::new (static_cast<void*>(slot(size_))) T(std::move(v));
        ++size_;
    }

    /// Prepends into a ring that has room (puts a message back at the head). Never throws.
    void push_front_nogrow(T&& v) noexcept {
        EDDY_ASSERT(size_ < cap_);
        head_ = (head_ + cap_ - 1) & (cap_ - 1);
        // SAFETY: size_ < cap_, so the slot before the head is free storage.
        ::new (static_cast<void*>(buf_ + head_)) T(std::move(v));
        ++size_;
    }

    [[nodiscard]] T& front() noexcept {
        EDDY_ASSERT(size_ != 0);
        return *slot(0);
    }

    /// Removes and returns the oldest element. The ring must not be empty.
    T pop_front() noexcept {
        EDDY_ASSERT(size_ != 0);
        T* p = slot(0);
        T v(std::move(*p));
        p->~T();
        head_ = (head_ + 1) & (cap_ - 1);
        --size_;
        return v;
    }

    /// Destroys every element; keeps the buffer.
    void clear() noexcept {
        while (size_ != 0)
            (void)pop_front();
        head_ = 0;
    }

private:
    static constexpr std::size_t min_capacity = 8;

    T* slot(std::size_t i) const noexcept { return buf_ + ((head_ + i) & (cap_ - 1)); }

    void free_buffer() noexcept {
        if (buf_ != nullptr)
            ::operator delete (static_cast<void*>(buf_), std::align_val_t{alignof(T)});
        buf_ = nullptr;
    }

    void clear_and_free() noexcept {
        clear();
        free_buffer();
        cap_ = 0;
    }

    T* buf_ = nullptr;
    std::size_t cap_ = 0;  ///< 0 or a power of two
    std::size_t head_ = 0; ///< index of the oldest element
    std::size_t size_ = 0;
};

} // namespace eddy::detail::channel
