// An owning, 64-byte aligned array: a cache line and a full AVX-512 vector, so kernels may use
// aligned loads on the first element and rows never share a line with another buffer.
#pragma once

#include <cstddef>
#include <cstring>
#include <limits>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#include "lmkit/core/error.hpp"

namespace lmkit {

inline constexpr std::size_t buffer_alignment = 64;

/// Tag asking for storage whose contents are left as they are (the caller fills it).
struct uninitialized_t {
  explicit uninitialized_t() = default;
};
inline constexpr uninitialized_t uninitialized{};

template <class T>
class aligned_buffer {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "aligned_buffer holds plain numbers: T must be trivially copyable and destructible");

 public:
  aligned_buffer() = default;

  /// `n` zero-initialised elements.
  explicit aligned_buffer(std::size_t n) : aligned_buffer(n, uninitialized) {
    if (n) std::memset(static_cast<void*>(data_), 0, n * sizeof(T));
  }

  aligned_buffer(std::size_t n, uninitialized_t) : size_(n) {
    require<argument_error>(n <= std::numeric_limits<std::size_t>::max() / sizeof(T),
                            "aligned_buffer: ", n, " elements overflow the address space");
    if (n) data_ = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{buffer_alignment}));
  }

  aligned_buffer(const aligned_buffer& other) : aligned_buffer(other.size_, uninitialized) {
    if (size_) std::memcpy(static_cast<void*>(data_), other.data_, size_ * sizeof(T));
  }
  aligned_buffer(aligned_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  aligned_buffer& operator=(aligned_buffer other) noexcept {
    swap(other);
    return *this;
  }
  ~aligned_buffer() { release(); }

  void swap(aligned_buffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  operator std::span<T>() noexcept { return {data_, size_}; }
  operator std::span<const T>() const noexcept { return {data_, size_}; }

 private:
  void release() noexcept {
    if (data_) ::operator delete(static_cast<void*>(data_), std::align_val_t{buffer_alignment});
    data_ = nullptr;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lmkit
