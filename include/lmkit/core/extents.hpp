// The shape of a tensor: each extent known at compile time or only at run time, mixed freely,
// as std::mdspan's extents (which g++ 12 does not ship yet). Only the dynamic ones take storage.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <utility>

#include "lmkit/core/error.hpp"

namespace lmkit {

/// Marks an extent that is known only at run time.
inline constexpr std::size_t dynamic = std::dynamic_extent;

template <std::size_t... Static>
class extents {
 public:
  static constexpr std::size_t rank() { return sizeof...(Static); }
  static constexpr std::size_t rank_dynamic() { return ((Static == dynamic) + ... + 0); }
  static constexpr std::size_t static_extent(std::size_t r) { return statics_[r]; }

  /// Dynamic extents start at 0 (as std::extents does), so views can be default-constructed.
  constexpr extents() = default;

  /// Either only the dynamic extents, in order, or all of them (the static ones are checked).
  template <std::integral... Sizes>
    requires(sizeof...(Sizes) > 0 && (sizeof...(Sizes) == rank_dynamic() || sizeof...(Sizes) == rank()))
  constexpr explicit extents(Sizes... sizes) {
    const std::array<std::size_t, sizeof...(Sizes)> given{static_cast<std::size_t>(sizes)...};
    for (auto s : std::array<long long, sizeof...(Sizes)>{static_cast<long long>(sizes)...})
      require<shape_error>(s >= 0, "extents: negative extent ", s);
    assign(std::span<const std::size_t>(given));
  }

  /// From any extents of the same rank whose static extents agree; dynamic ones are checked.
  template <std::size_t... Other>
    requires(sizeof...(Other) == rank())
  constexpr explicit(((Static != dynamic && Other == dynamic) || ...)) extents(const extents<Other...>& other) {
    std::array<std::size_t, rank()> all{};
    for (std::size_t r = 0; r < rank(); ++r) all[r] = other.extent(r);
    assign(std::span<const std::size_t>(all));
  }

  constexpr std::size_t extent(std::size_t r) const {
    if (statics_[r] != dynamic) return statics_[r];
    return dynamic_[dynamic_index_[r]];
  }

  /// Number of elements: the product of all extents (1 for rank 0).
  constexpr std::size_t size() const {
    std::size_t n = 1;
    for (std::size_t r = 0; r < rank(); ++r) n *= extent(r);
    return n;
  }

  constexpr std::array<std::size_t, rank()> as_array() const {
    std::array<std::size_t, rank()> out{};
    for (std::size_t r = 0; r < rank(); ++r) out[r] = extent(r);
    return out;
  }

  template <std::size_t... Other>
  friend constexpr bool operator==(const extents& a, const extents<Other...>& b) {
    if constexpr (sizeof...(Other) != rank()) return false;
    else return a.as_array() == b.as_array();
  }

 private:
  static constexpr std::array<std::size_t, rank()> statics_{Static...};
  static constexpr std::array<std::size_t, rank()> dynamic_index_ = [] {
    std::array<std::size_t, rank()> index{};
    std::size_t d = 0;
    for (std::size_t r = 0; r < rank(); ++r) index[r] = statics_[r] == dynamic ? d++ : 0;
    return index;
  }();

  constexpr void assign(std::span<const std::size_t> given) {
    if (given.size() == rank()) {
      for (std::size_t r = 0; r < rank(); ++r) {
        if (statics_[r] == dynamic) {
          dynamic_[dynamic_index_[r]] = given[r];
        } else {
          require<shape_error>(given[r] == statics_[r], "extents: extent ", r, " is fixed at ", statics_[r],
                               " but ", given[r], " was given");
        }
      }
    } else {
      for (std::size_t d = 0; d < rank_dynamic(); ++d) dynamic_[d] = given[d];
    }
  }

  std::array<std::size_t, rank_dynamic()> dynamic_{};
};

namespace detail {
template <std::size_t Rank, class Seq = std::make_index_sequence<Rank>>
struct all_dynamic;
template <std::size_t Rank, std::size_t... I>
struct all_dynamic<Rank, std::index_sequence<I...>> {
  using type = extents<((void)I, dynamic)...>;
};
}  // namespace detail

/// Extents of rank `Rank`, all known only at run time.
template <std::size_t Rank>
using dims = typename detail::all_dynamic<Rank>::type;

}  // namespace lmkit
