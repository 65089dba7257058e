// Tensors: `tensor_view` points at elements it does not own (a row of a weight matrix, a slice of a
// mapped file); `tensor` owns 64-byte aligned, row-major storage. Both carry `extents`, so a shape
// may be fixed at compile time, known at run time, or a mix (`tensor<float, extents<dynamic, 768>>`).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <type_traits>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/extents.hpp"

namespace lmkit {

template <class T, class Extents>
class tensor_view;

namespace detail {
template <std::size_t Rank>
constexpr std::array<std::size_t, Rank> row_major_strides(const std::array<std::size_t, Rank>& shape) {
  std::array<std::size_t, Rank> strides{};
  std::size_t stride = 1;
  for (std::size_t r = Rank; r-- > 0;) {
    strides[r] = stride;
    stride *= shape[r];
  }
  return strides;
}
}  // namespace detail

/// A non-owning view: a pointer, extents, and a stride (in elements) per dimension. Copy it freely.
template <class T, class Extents>
class tensor_view {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using extents_type = Extents;
  static constexpr std::size_t rank() { return Extents::rank(); }
  using strides_type = std::array<std::size_t, rank()>;

  constexpr tensor_view() = default;

  /// Contiguous, row-major view of `shape.size()` elements at `data`.
  constexpr tensor_view(T* data, Extents shape)
      : data_(data), extents_(shape), strides_(detail::row_major_strides<rank()>(shape.as_array())) {}

  /// Strided view; the innermost stride need not be 1.
  constexpr tensor_view(T* data, Extents shape, strides_type strides) : data_(data), extents_(shape), strides_(strides) {}

  /// Conversions that add const or turn static extents into dynamic ones (or back, checked).
  template <class U, class OtherExtents>
    requires(std::is_convertible_v<U (*)[], T (*)[]> && OtherExtents::rank() == rank() &&
             std::is_constructible_v<Extents, OtherExtents>)
  constexpr explicit(!std::is_convertible_v<OtherExtents, Extents>) tensor_view(const tensor_view<U, OtherExtents>& other)
      : data_(other.data()), extents_(other.extents()), strides_(other.strides()) {}

  constexpr T* data() const { return data_; }
  constexpr const Extents& extents() const { return extents_; }
  constexpr const strides_type& strides() const { return strides_; }
  constexpr std::size_t extent(std::size_t r) const { return extents_.extent(r); }
  constexpr std::size_t stride(std::size_t r) const { return strides_[r]; }
  constexpr std::size_t size() const { return extents_.size(); }
  constexpr bool empty() const { return size() == 0; }

  constexpr bool is_contiguous() const { return strides_ == detail::row_major_strides<rank()>(extents_.as_array()); }

  /// Element access without bounds checks (the hot path).
  template <std::integral... I>
    requires(sizeof...(I) == rank())
  constexpr T& operator()(I... index) const {
    const std::array<std::size_t, rank()> at{static_cast<std::size_t>(index)...};
    std::size_t offset = 0;
    for (std::size_t r = 0; r < rank(); ++r) offset += at[r] * strides_[r];
    return data_[offset];
  }

  /// Element access that throws shape_error when an index is out of range.
  template <std::integral... I>
    requires(sizeof...(I) == rank())
  constexpr T& at(I... index) const {
    const std::array<std::size_t, rank()> where{static_cast<std::size_t>(index)...};
    for (std::size_t r = 0; r < rank(); ++r)
      require<shape_error>(where[r] < extent(r), "tensor index ", where[r], " out of range ", extent(r), " in dimension ", r);
    return (*this)(index...);
  }

  /// The elements as one span; only for contiguous views.
  std::span<T> span() const {
    require<shape_error>(is_contiguous(), "tensor_view::span: the view is not contiguous");
    return {data_, size()};
  }

  /// The sub-tensor at index `i` of the first dimension (a row of a matrix), rank one lower.
  auto operator[](std::size_t i) const
    requires(rank() >= 2)
  {
    using sub_extents = drop_first_t<Extents>;
    std::array<std::size_t, rank() - 1> shape{}, strides{};
    for (std::size_t r = 1; r < rank(); ++r) {
      shape[r - 1] = extent(r);
      strides[r - 1] = strides_[r];
    }
    return tensor_view<T, sub_extents>(data_ + i * strides_[0], make_extents<sub_extents>(shape), strides);
  }

 private:
  template <class E>
  struct drop_first;
  template <std::size_t First, std::size_t... Rest>
  struct drop_first<lmkit::extents<First, Rest...>> {
    using type = lmkit::extents<Rest...>;
  };
  template <class E>
  using drop_first_t = typename drop_first<E>::type;

  template <class E, std::size_t... R>
  static constexpr E make_extents_impl(const std::array<std::size_t, E::rank()>& shape, std::index_sequence<R...>) {
    if constexpr (E::rank_dynamic() == 0) return E{};
    else return E(shape[R]...);
  }
  template <class E>
  static constexpr E make_extents(const std::array<std::size_t, E::rank()>& shape) {
    return make_extents_impl<E>(shape, std::make_index_sequence<E::rank()>{});
  }

  T* data_ = nullptr;
  Extents extents_{};
  strides_type strides_{};
};

/// An owning, contiguous, row-major tensor with 64-byte aligned storage, zero-initialised.
template <class T, class Extents>
class tensor {
 public:
  using value_type = T;
  using extents_type = Extents;
  static constexpr std::size_t rank() { return Extents::rank(); }

  tensor() requires(Extents::rank_dynamic() == 0) : storage_(Extents{}.size()) {}
  explicit tensor(Extents shape) : extents_(shape), storage_(shape.size()) {}
  tensor(Extents shape, uninitialized_t) : extents_(shape), storage_(shape.size(), uninitialized) {}

  /// `tensor<float, dims<2>> t(rows, cols);`: the dynamic extents (or all of them).
  template <std::integral... Sizes>
    requires(sizeof...(Sizes) > 0)
  explicit tensor(Sizes... sizes) : tensor(Extents(sizes...)) {}

  T* data() { return storage_.data(); }
  const T* data() const { return storage_.data(); }
  const Extents& extents() const { return extents_; }
  std::size_t extent(std::size_t r) const { return extents_.extent(r); }
  std::size_t size() const { return extents_.size(); }
  bool empty() const { return size() == 0; }

  tensor_view<T, Extents> view() { return {data(), extents_}; }
  tensor_view<const T, Extents> view() const { return {data(), extents_}; }
  operator tensor_view<T, Extents>() { return view(); }
  operator tensor_view<const T, Extents>() const { return view(); }

  std::span<T> span() { return {data(), size()}; }
  std::span<const T> span() const { return {data(), size()}; }

  template <std::integral... I>
    requires(sizeof...(I) == rank())
  T& operator()(I... index) {
    return view()(index...);
  }
  template <std::integral... I>
    requires(sizeof...(I) == rank())
  const T& operator()(I... index) const {
    return view()(index...);
  }
  template <std::integral... I>
    requires(sizeof...(I) == rank())
  T& at(I... index) {
    return view().at(index...);
  }
  auto operator[](std::size_t i) requires(rank() >= 2) { return view()[i]; }
  auto operator[](std::size_t i) const requires(rank() >= 2) { return view()[i]; }

 private:
  Extents extents_{};
  aligned_buffer<T> storage_;
};

template <class T, std::size_t Rank>
using dynamic_tensor = tensor<T, dims<Rank>>;

}  // namespace lmkit
