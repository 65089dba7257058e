// residual<F>: x + F(x). The backward adds the two paths: dx = dy + F'(x)^T dy.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/sequential.hpp"

namespace lmkit::nn {

template <class Inner>
class residual {
  static_assert(detail::check_part<Inner>());
  static_assert(detail::widths_agree(Inner::in_width, Inner::out_width),
                "nn::residual: the inner layer must give back as many features as it takes");

 public:
  static constexpr std::size_t in_width = Inner::in_width;
  static constexpr std::size_t out_width = Inner::in_width == dynamic ? Inner::out_width : Inner::in_width;

  residual() requires std::is_default_constructible_v<Inner> = default;
  explicit residual(Inner inner) : inner_(std::move(inner)) {
    require<shape_error>(inner_.in_features() == inner_.out_features(), "nn::residual: the inner layer takes ",
                         inner_.in_features(), " features but gives ", inner_.out_features());
  }

  Inner& inner() { return inner_; }
  std::size_t in_features() const { return inner_.in_features(); }
  std::size_t out_features() const { return inner_.out_features(); }

  void reserve(activation_arena& arena, batch_shape shape) {
    inner_.reserve(arena, shape);
    rows_ = shape.rows();
    y_ = arena.take(rows_ * in_features());
    dx_ = arena.take(rows_ * in_features());
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    const const_matrix f = inner_.forward(x, ctx);
    detail::parallel_add(ctx, x.span(), f.span(), y_);
    return as_matrix(std::span<const float>(y_), rows_, in_features());
  }

  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const const_matrix df = inner_.backward(dy, ctx);
    detail::parallel_add(ctx, dy.span(), df.span(), dx_);
    return as_matrix(std::span<const float>(dx_), rows_, in_features());
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    inner_.visit_parameters(visit, prefix);
  }

 private:
  Inner inner_;
  std::size_t rows_ = 0;
  std::span<float> y_, dx_;
};

}  // namespace lmkit::nn
