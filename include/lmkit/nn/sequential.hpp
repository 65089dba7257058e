// sequential<A, B, C>: C(B(A(x))), and the backward in reverse. A flat list of parts, checked at
// compile time: every part must be a trainable layer, and neighbouring widths must agree where
// the types know them (and at construction where only the values do).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "lmkit/core/error.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

namespace detail {

template <class L>
consteval bool check_part() {
  static_assert(has_forward<L, const_matrix>,
                "nn: this part has no forward(const_matrix, const run_context&): it cannot sit in a sequence of layers");
  static_assert(has_backward<L, const_matrix>,
                "nn: this part has a forward but no backward taking its output's gradient: it cannot be trained");
  static_assert(reservable<L>, "nn: this part has no reserve(activation_arena&, batch_shape) for its buffers");
  static_assert(has_parameters<L>, "nn: this part has no visit_parameters(visitor, prefix)");
  static_assert(requires { L::in_width; L::out_width; }, "nn: this part does not declare in_width and out_width");
  return true;
}

template <class... Layers>
consteval bool widths_chain() {
  constexpr std::array<std::size_t, sizeof...(Layers)> in{Layers::in_width...}, out{Layers::out_width...};
  for (std::size_t i = 0; i + 1 < in.size(); ++i)
    if (!widths_agree(out[i], in[i + 1])) return false;
  return true;
}

}  // namespace detail

template <class... Layers>
class sequential {
  static_assert(sizeof...(Layers) > 0, "nn::sequential needs at least one layer");
  static_assert((detail::check_part<Layers>() && ...));
  static_assert(detail::widths_chain<Layers...>(),
                "nn::sequential: a layer's output width differs from the next layer's input width");

 public:
  static constexpr std::size_t in_width = std::tuple_element_t<0, std::tuple<Layers...>>::in_width;
  static constexpr std::size_t out_width = std::tuple_element_t<sizeof...(Layers) - 1, std::tuple<Layers...>>::out_width;

  sequential() requires(std::is_default_constructible_v<Layers> && ...) = default;
  explicit sequential(Layers... parts) : parts_(std::move(parts)...) { check_widths(); }

  template <std::size_t I>
  auto& get() { return std::get<I>(parts_); }
  static constexpr std::size_t size() { return sizeof...(Layers); }

  std::size_t in_features() const { return std::get<0>(parts_).in_features(); }
  std::size_t out_features() const { return std::get<sizeof...(Layers) - 1>(parts_).out_features(); }

  void reserve(activation_arena& arena, batch_shape shape) {
    std::apply([&](auto&... part) { (part.reserve(arena, shape), ...); }, parts_);
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    std::apply([&](auto&... part) { ((x = part.forward(x, ctx)), ...); }, parts_);
    return x;
  }

  const_matrix backward(const_matrix dy, const run_context& ctx) {
    backward_from<sizeof...(Layers)>(dy, ctx);
    return dy;
  }

  /// Parts are named by position ("0", "1", ...), as PyTorch's nn.Sequential names them.
  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    visit_from<0>(visit, prefix);
  }

 private:
  template <std::size_t I>
  void backward_from(const_matrix& dy, const run_context& ctx) {
    if constexpr (I > 0) {
      dy = std::get<I - 1>(parts_).backward(dy, ctx);
      backward_from<I - 1>(dy, ctx);
    }
  }
  template <std::size_t I, class Visitor>
  void visit_from(Visitor& visit, std::string_view prefix) {
    if constexpr (I < sizeof...(Layers)) {
      std::get<I>(parts_).visit_parameters(visit, join_name(prefix, std::to_string(I)));
      visit_from<I + 1>(visit, prefix);
    }
  }
  void check_widths() const {
    check_from<0>();
  }
  template <std::size_t I>
  void check_from() const {
    if constexpr (I + 1 < sizeof...(Layers)) {
      const std::size_t out = std::get<I>(parts_).out_features(), in = std::get<I + 1>(parts_).in_features();
      require<shape_error>(out == in, "nn::sequential: part ", I, " gives ", out, " features but part ", I + 1,
                           " takes ", in);
      check_from<I + 1>();
    }
  }

  std::tuple<Layers...> parts_;
};

}  // namespace lmkit::nn
