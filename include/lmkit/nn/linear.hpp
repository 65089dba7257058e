// y = x W^T (+ b): a weight stored [out, in], as PyTorch's nn.Linear and Hugging Face checkpoints
// store it, so a row of W is one output's weights.
//
// A linear layer either owns its weights as trainable parameters, or is frozen: it points at weights
// held elsewhere (a mapped model file) in any weight_type (f32, f16, bf16, q8_0, q4_0). Both run
// `infer` (no gradient kept, any number of rows); only a trainable one has forward / backward.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

template <std::size_t In = dynamic, std::size_t Out = dynamic>
class linear {
 public:
  static constexpr std::size_t in_width = In;
  static constexpr std::size_t out_width = Out;

  linear() requires(In != dynamic && Out != dynamic) : linear(In, Out) {}
  linear(std::size_t in, std::size_t out, bias b = bias::no)
      : in_(detail::checked_width(In, in, "linear", "input width")),
        out_(detail::checked_width(Out, out, "linear", "output width")),
        weight_({out, in}, decay::yes) {
    if (b == bias::yes) bias_ = parameter({out}, decay::no);
  }
  /// A frozen layer over `weights` [out, in] and an optional `bias` [out], both owned elsewhere.
  explicit linear(weight_matrix weights, std::span<const float> bias = {})
      : in_(detail::checked_width(In, weights.cols, "linear", "input width")),
        out_(detail::checked_width(Out, weights.rows, "linear", "output width")),
        frozen_(weights),
        frozen_bias_(bias),
        is_frozen_(true) {
    require<shape_error>(bias.empty() || bias.size() == out_, "linear: a bias of ", bias.size(), " values for ", out_,
                         " outputs");
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  bool has_bias() const { return bias_.size() != 0 || !frozen_bias_.empty(); }
  /// Whether the weights are held elsewhere (no parameters, no backward).
  bool frozen() const { return is_frozen_; }
  /// The weights as a matrix of their storage type: the parameter's values when trainable.
  weight_matrix weights() const {
    return frozen() ? frozen_ : weight_matrix{weight_type::f32, weight_.value().data(), out_, in_};
  }
  std::span<const float> bias_values() const { return frozen() ? frozen_bias_ : bias_.value(); }
  parameter& weight() { return weight_; }
  parameter& bias_parameter() { return bias_; }

  /// PyTorch's default for nn.Linear would be uniform(+-1/sqrt(in)); GPT-style models use normal(0, std).
  void init_normal(philox& rng, float stddev) {
    weight_.init_normal(rng, stddev);
    bias_.fill(0.0f);
  }

  void reserve(activation_arena& arena, batch_shape shape) {
    rows_ = shape.rows();
    y_ = arena.take(rows_ * out_);
    dx_ = arena.take(rows_ * in_);
  }

  /// y [rows, out] = x [rows, in] W^T (+ b) for inference: any number of rows, nothing kept, and
  /// `const`, so sessions may share the layer. Row strides are the widths.
  void infer(const float* x, std::size_t rows, float* y, const thread_pool& pool) const {
    kernels::matmul_weights(x, rows, in_, weights(), y, out_, pool);
    const std::span<const float> b = bias_values();
    if (!b.empty())
      for (std::size_t r = 0; r < rows; ++r) kernels::add({y + r * out_, out_}, b, {y + r * out_, out_});
  }

  /// x [rows, in] -> y [rows, out]
  const_matrix forward(const_matrix x, const run_context& ctx) {
    require<argument_error>(!frozen(), "linear: this layer's ", name_of(frozen_.type),
                            " weights are frozen (held by a model file): it runs infer, not forward / backward");
    require<shape_error>(x.extent(0) == rows_ && x.extent(1) == in_, "linear: input is [", x.extent(0), " x ",
                         x.extent(1), "], expected [", rows_, " x ", in_, "]");
    x_ = x;
    const matrix y = as_matrix(y_, rows_, out_);
    kernels::matmul_nt(x, weight_.value_matrix(), y, *ctx.pool, false, ctx.products);
    if (has_bias())
      for (std::size_t r = 0; r < rows_; ++r) kernels::add(y[r].span(), bias_.value(), y[r].span());
    return y;
  }

  /// dy [rows, out] -> dx [rows, in] = dy W;  dW += dy^T x;  db += column sums of dy.
  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const matrix dx = as_matrix(dx_, rows_, in_);
    require<shape_error>(dy.extent(0) == rows_ && dy.extent(1) == out_, "linear: output gradient is [", dy.extent(0),
                         " x ", dy.extent(1), "], expected [", rows_, " x ", out_, "]");
    const kernels::matrix_operand dy_operand{dy.data(), dtype::f32, dy.stride(0), false};
    const kernels::matrix_operand dy_transposed{dy.data(), dtype::f32, dy.stride(0), true};
    kernels::gemm({rows_, in_, out_, dy_operand, {weight_.value().data(), dtype::f32, in_, false}, dx.data(), dx.stride(0),
                   false, ctx.products},
                  *ctx.pool);
    kernels::gemm({out_, in_, rows_, dy_transposed, {x_.data(), dtype::f32, x_.stride(0), false}, weight_.grad().data(),
                   in_, true, ctx.products},
                  *ctx.pool);
    if (has_bias())
      for (std::size_t r = 0; r < rows_; ++r) kernels::add(dy[r].span(), bias_.grad(), bias_.grad());
    return dx;
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    if (frozen()) return;  // nothing to train
    visit(join_name(prefix, "weight"), weight_);
    if (has_bias()) visit(join_name(prefix, "bias"), bias_);
  }

 private:
  std::size_t in_, out_;
  parameter weight_, bias_;
  weight_matrix frozen_{};
  std::span<const float> frozen_bias_;
  bool is_frozen_ = false;
  std::size_t rows_ = 0;
  std::span<float> y_, dx_;
  const_matrix x_;
};

}  // namespace lmkit::nn
