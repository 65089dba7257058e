// Multi-head self-attention (Vaswani et al. 2017) with the options the model families need:
// causal (decoders) or bidirectional (encoders), grouped-query heads (fewer key/value heads than
// query heads, Llama 2/3), and rotary positions (RoPE, Su et al. 2021) in either convention.
//
// Shapes, per batch of B sequences of T positions, C = width, H query heads, G key/value heads,
// D = C / H:  x (B*T, C) -> c_attn -> qkv (B*T, (H + 2G) D) -> per (b, h): S = Q K^T / sqrt(D)
// (T, T) -> P = softmax(S) (masked when causal) -> Y = P V (T, D) -> y (B*T, H D) -> c_proj -> (B*T, C).
// Each per-head product is one small GEMM over strided views of qkv.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"
#include "lmkit/nn/linear.hpp"

namespace lmkit::nn {

struct rope_options {
  double base = 10000.0;
  kernels::rope_style style = kernels::rope_style::half_rotation;
};

struct attention_options {
  std::size_t heads = 1;
  std::size_t kv_heads = 0;  // 0: one key/value head per query head
  bool causal = true;        // false: every position sees every other (encoders)
  bias qkv_bias = bias::no;
  bias out_bias = bias::no;
  std::optional<rope_options> rope = std::nullopt;
};

template <std::size_t Width = dynamic>
class self_attention {
 public:
  static constexpr std::size_t in_width = Width;
  static constexpr std::size_t out_width = Width;

  self_attention(std::size_t width, attention_options options)
      : width_(detail::checked_width(Width, width, "self_attention", "width")),
        heads_(options.heads),
        kv_heads_(options.kv_heads == 0 ? options.heads : options.kv_heads),
        head_dim_(check_heads(width, options)),
        options_(options),
        c_attn_(width, (heads_ + 2 * kv_heads_) * head_dim_, options.qkv_bias),
        c_proj_(heads_ * head_dim_, width, options.out_bias) {}

  std::size_t in_features() const { return width_; }
  std::size_t out_features() const { return width_; }
  std::size_t heads() const { return heads_; }
  std::size_t kv_heads() const { return kv_heads_; }
  std::size_t head_dim() const { return head_dim_; }
  linear<>& qkv_projection() { return c_attn_; }
  linear<>& output_projection() { return c_proj_; }

  void reserve(activation_arena& arena, batch_shape shape) {
    shape_ = shape;
    const std::size_t rows = shape.rows(), t = shape.time;
    c_attn_.reserve(arena, shape);
    c_proj_.reserve(arena, shape);
    if (options_.rope) {
      rotated_ = arena.take(rows * qkv_width());
      rope_cos_ = arena.take(t * head_dim_ / 2);
      rope_sin_ = arena.take(t * head_dim_ / 2);
      if (!rope_cos_.empty())
        for (std::size_t pos = 0; pos < t; ++pos)
          kernels::rope_angles(pos, head_dim_, options_.rope->base, rope_cos_.subspan(pos * head_dim_ / 2, head_dim_ / 2),
                               rope_sin_.subspan(pos * head_dim_ / 2, head_dim_ / 2));
    }
    probs_ = arena.take(shape.batch * heads_ * t * t);
    y_ = arena.take(rows * heads_ * head_dim_);
    dqkv_ = arena.take(rows * qkv_width());
    dscores_ = arena.take(shape.batch * kv_heads_ * t * t);
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    const_matrix qkv = c_attn_.forward(x, ctx);
    if (options_.rope) qkv = rotate(qkv, ctx);
    qkv_ = qkv;
    const std::size_t t = shape_.time, stride = qkv_width(), y_stride = heads_ * head_dim_;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
    ctx.pool->for_each_index(shape_.batch * heads_, [&](std::size_t task) {
      const std::size_t b = task / heads_, h = task % heads_, g = h / (heads_ / kv_heads_);
      const float* q = qkv.data() + b * t * stride + h * head_dim_;
      const float* k = qkv.data() + b * t * stride + (heads_ + g) * head_dim_;
      const float* v = qkv.data() + b * t * stride + (heads_ + kv_heads_ + g) * head_dim_;
      float* p = probs_.data() + task * t * t;
      // S = Q K^T: K is stored [T, D], used transposed.
      kernels::gemm({t, t, head_dim_, {q, dtype::f32, stride, false}, {k, dtype::f32, stride, true}, p, t, false});
      for (std::size_t i = 0; i < t; ++i) {
        const std::size_t seen = options_.causal ? i + 1 : t;
        std::span<float> row(p + i * t, seen);
        kernels::scale(row, scale, row);
        kernels::softmax(row, row);
        std::fill(p + i * t + seen, p + (i + 1) * t, 0.0f);
      }
      kernels::gemm({t, head_dim_, t, {p, dtype::f32, t, false}, {v, dtype::f32, stride, false},
                     y_.data() + b * t * y_stride + h * head_dim_, y_stride, false});
    });
    return c_proj_.forward(as_matrix(std::span<const float>(y_), shape_.rows(), y_stride), ctx);
  }

  const_matrix backward(const_matrix dout, const run_context& ctx) {
    const const_matrix dy = c_proj_.backward(dout, ctx);
    const std::size_t t = shape_.time, stride = qkv_width(), y_stride = heads_ * head_dim_;
    const std::size_t group = heads_ / kv_heads_;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
    // One task per (sequence, key/value head): the query heads sharing that key/value head all add
    // into its dK and dV, so they run in one task, in order; the first of them writes instead of
    // adding, so dqkv needs no zeroing.
    ctx.pool->for_each_index(shape_.batch * kv_heads_, [&](std::size_t task) {
      const std::size_t b = task / kv_heads_, g = task % kv_heads_;
      const float* qkv = qkv_.data() + b * t * stride;
      float* dqkv = dqkv_.data() + b * t * stride;
      const float* k = qkv + (heads_ + g) * head_dim_;
      const float* v = qkv + (heads_ + kv_heads_ + g) * head_dim_;
      float* dk = dqkv + (heads_ + g) * head_dim_;
      float* dv = dqkv + (heads_ + kv_heads_ + g) * head_dim_;
      float* ds = dscores_.data() + task * t * t;
      for (std::size_t h = g * group; h < (g + 1) * group; ++h) {
        const float* q = qkv + h * head_dim_;
        float* dq = dqkv + h * head_dim_;
        const float* dyh = dy.data() + b * t * y_stride + h * head_dim_;
        const float* p = probs_.data() + (b * heads_ + h) * t * t;
        const bool first = h == g * group;
        // dV += P^T dY;  dP = dY V^T
        kernels::gemm({t, head_dim_, t, {p, dtype::f32, t, true}, {dyh, dtype::f32, y_stride, false}, dv, stride, !first});
        kernels::gemm({t, t, head_dim_, {dyh, dtype::f32, y_stride, false}, {v, dtype::f32, stride, true}, ds, t, false});
        // dS = P * (dP - <dP, P>) * scale, row by row (zero where the mask hid the key).
        for (std::size_t i = 0; i < t; ++i) {
          const std::size_t seen = options_.causal ? i + 1 : t;
          const float* prow = p + i * t;
          float* drow = ds + i * t;
          float dot = 0.0f;
          for (std::size_t j = 0; j < seen; ++j) dot += prow[j] * drow[j];
          for (std::size_t j = 0; j < seen; ++j) drow[j] = prow[j] * (drow[j] - dot) * scale;
          std::fill(drow + seen, drow + t, 0.0f);
        }
        // dQ = dS K;  dK += dS^T Q
        kernels::gemm({t, head_dim_, t, {ds, dtype::f32, t, false}, {k, dtype::f32, stride, false}, dq, stride, false});
        kernels::gemm({t, head_dim_, t, {ds, dtype::f32, t, true}, {q, dtype::f32, stride, false}, dk, stride, !first});
      }
    });
    if (options_.rope) unrotate_gradient(ctx);
    return c_attn_.backward(as_matrix(std::span<const float>(dqkv_), shape_.rows(), stride), ctx);
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    c_attn_.visit_parameters(visit, join_name(prefix, "c_attn"));
    c_proj_.visit_parameters(visit, join_name(prefix, "c_proj"));
  }

 private:
  static std::size_t check_heads(std::size_t width, const attention_options& o) {
    const std::size_t kv = o.kv_heads == 0 ? o.heads : o.kv_heads;
    require<argument_error>(o.heads > 0 && width % o.heads == 0, "self_attention: width ", width,
                            " is not a multiple of ", o.heads, " heads");
    require<argument_error>(kv > 0 && o.heads % kv == 0, "self_attention: ", o.heads,
                            " query heads cannot share ", kv, " key/value heads evenly");
    require<argument_error>(!o.rope || (width / o.heads) % 2 == 0, "self_attention: RoPE needs an even head size, got ",
                            width / o.heads);
    return width / o.heads;
  }
  std::size_t qkv_width() const { return (heads_ + 2 * kv_heads_) * head_dim_; }

  /// Copies qkv with the query and key parts rotated by their positions.
  const_matrix rotate(const_matrix qkv, const run_context& ctx) {
    const std::size_t stride = qkv_width(), half = head_dim_ / 2;
    std::copy(qkv.data(), qkv.data() + shape_.rows() * stride, rotated_.begin());
    ctx.pool->for_each_chunk(shape_.rows(), detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const std::size_t pos = r % shape_.time;
        kernels::rope(rotated_.subspan(r * stride, (heads_ + kv_heads_) * head_dim_), head_dim_,
                      rope_cos_.subspan(pos * half, half), rope_sin_.subspan(pos * half, half), options_.rope->style);
      }
    });
    return as_matrix(std::span<const float>(rotated_), shape_.rows(), stride);
  }
  /// The rotation is orthogonal: its backward is the inverse rotation of the gradient.
  void unrotate_gradient(const run_context& ctx) {
    const std::size_t stride = qkv_width(), half = head_dim_ / 2;
    ctx.pool->for_each_chunk(shape_.rows(), detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const std::size_t pos = r % shape_.time;
        kernels::rope_backward(dqkv_.subspan(r * stride, (heads_ + kv_heads_) * head_dim_), head_dim_,
                               rope_cos_.subspan(pos * half, half), rope_sin_.subspan(pos * half, half),
                               options_.rope->style);
      }
    });
  }

  std::size_t width_, heads_, kv_heads_, head_dim_;
  attention_options options_;
  linear<> c_attn_, c_proj_;
  batch_shape shape_;
  const_matrix qkv_;
  std::span<float> rotated_, rope_cos_, rope_sin_, probs_, y_, dqkv_, dscores_;
};

}  // namespace lmkit::nn
