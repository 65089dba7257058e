// Multi-head self-attention (Vaswani et al. 2017) with the options the model families need:
// causal (decoders) or bidirectional (encoders), grouped-query heads (fewer key/value heads than
// query heads, Llama 2/3), and rotary positions (RoPE, Su et al. 2021) in either convention.
//
// Shapes, per batch of B sequences of T positions, C = width, H query heads, G key/value heads,
// D = C / H:  x (B*T, C) -> c_attn -> qkv (B*T, (H + 2G) D) -> per (b, h): S = Q K^T / sqrt(D)
// (T, T) -> P = softmax(S) (masked when causal) -> Y = P V (T, D) -> y (B*T, H D) -> c_proj -> (B*T, C).
// Each per-head product is one small GEMM over strided views of qkv.
//
// The same layer runs a pretrained model (`infer`): new tokens at the next positions of a sequence,
// their keys and values appended to a KV cache and every query attending to the cached positions up
// to its own. Its projections are then frozen linear layers over the model file's weights, with the
// file's separate q, k, v matrices when it has them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/dropout.hpp"
#include "lmkit/nn/layer.hpp"
#include "lmkit/nn/linear.hpp"
#include "lmkit/nn/rope_table.hpp"

namespace lmkit::nn {

struct rope_options {
  double base = 10000.0;
  kernels::rope_style style = kernels::rope_style::half_rotation;
};

struct attention_options {
  std::size_t heads = 1;
  std::size_t kv_heads = 0;  // 0: one key/value head per query head
  std::size_t head_dim = 0;  // 0: width / heads
  bool causal = true;        // false: every position sees every other (encoders)
  bias qkv_bias = bias::no;
  bias out_bias = bias::no;
  std::optional<rope_options> rope = std::nullopt;
  float dropout = 0.0f;            // while training, on the attention weights (GPT-2's attn_pdrop)
  std::uint64_t dropout_salt = 0;  // sets this layer's masks apart (see nn::dropout)
};

/// The arithmetic of attention at inference.
enum class attention_precision {
  /// Keys, values, queries and weights in f32: logits as PyTorch computes them (the default).
  f32,
  /// As llama.cpp computes it by default: keys and values held in f16 (its KV cache type), the query
  /// rounded to f16 for the dot products, and the weighted sum of values kept in an f16 accumulator
  /// with an online softmax (its flash-attention CPU kernel). Reproduces llama.cpp's greedy tokens
  /// where f32 and f16 arithmetic choose differently between near ties (quantised models).
  llama_cpp_f16,
};

/// One layer's rows of a KV cache ([context, kv_heads * head_dim] keys, and values alike), of
/// which the first `position` are filled.
struct kv_rows {
  float* keys = nullptr;
  float* values = nullptr;
  std::size_t position = 0;
};

/// How `infer` runs: the arithmetic, the rotary table (rotary attention), and where to copy the
/// last new token's attention weights if wanted ([heads][record_stride], f32 precision only).
struct attention_inference {
  attention_precision precision = attention_precision::f32;
  const rope_table* rope = nullptr;
  float* record = nullptr;
  std::size_t record_stride = 0;
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

  /// From separate query, key and value projections and the output projection (frozen ones: a
  /// pretrained model's; `options`' bias flags are then the layers' own business).
  self_attention(std::size_t width, attention_options options, linear<> q, linear<> k, linear<> v, linear<> out)
      : width_(detail::checked_width(Width, width, "self_attention", "width")),
        heads_(options.heads),
        kv_heads_(options.kv_heads == 0 ? options.heads : options.kv_heads),
        head_dim_(check_heads(width, options)),
        options_(options),
        c_attn_(width, 0),  // unused: the projections are split
        c_proj_(std::move(out)) {
    const std::size_t qw = heads_ * head_dim_, kvw = kv_heads_ * head_dim_;
    for (const auto& [part, rows] : {std::pair<const linear<>*, std::size_t>{&q, qw}, {&k, kvw}, {&v, kvw}})
      require<shape_error>(part->in_features() == width && part->out_features() == rows, "self_attention: a q/k/v ",
                           "projection is [", part->out_features(), " x ", part->in_features(), "], expected [", rows,
                           " x ", width, "]");
    require<shape_error>(c_proj_.in_features() == qw && c_proj_.out_features() == width, "self_attention: the output ",
                         "projection is [", c_proj_.out_features(), " x ", c_proj_.in_features(), "], expected [", width,
                         " x ", qw, "]");
    split_.reserve(3);
    split_.push_back(std::move(q));
    split_.push_back(std::move(k));
    split_.push_back(std::move(v));
  }

  std::size_t in_features() const { return width_; }
  std::size_t out_features() const { return width_; }
  std::size_t heads() const { return heads_; }
  std::size_t kv_heads() const { return kv_heads_; }
  std::size_t head_dim() const { return head_dim_; }
  linear<>& qkv_projection() { return c_attn_; }
  linear<>& output_projection() { return c_proj_; }

  /// Floats of scratch that `infer` needs for `rows` new tokens.
  std::size_t infer_scratch(std::size_t rows) const { return rows * (qkv_width() + heads_ * head_dim_); }

  /// y [rows, width] = attention of `rows` new tokens x [rows, width] at positions cache.position
  /// on, to the cached positions and to each other (causally): their keys and values are written to
  /// the cache rows at those positions first. Per (token, head) tasks, so the result does not depend
  /// on the thread count. y may not alias x.
  void infer(const float* x, std::size_t rows, kv_rows cache, const attention_inference& how, float* y,
             std::span<float> scratch, const thread_pool& pool) const {
    require<argument_error>(options_.causal, "self_attention: infer runs causal attention (a decoder's)");
    require<argument_error>(!options_.rope || (how.rope && how.rope->head_dim() == head_dim_ &&
                                               how.rope->base() == options_.rope->base),
                            "self_attention: rotary attention needs a rope_table of its head size and base");
    require<argument_error>(!how.record || how.precision == attention_precision::f32,
                            "self_attention: attention weights are recorded with f32 attention only");
    const std::size_t qw = heads_ * head_dim_, kvw = kv_heads_ * head_dim_;
    float* q = scratch.data();
    float *k, *v;
    std::size_t q_stride, kv_stride;
    if (split_.empty()) {  // one fused projection: q, k and v are strided views of its rows
      c_attn_.infer(x, rows, q, pool);
      k = q + qw;
      v = k + kvw;
      q_stride = kv_stride = qkv_width();
    } else {
      k = q + rows * qw;
      v = k + rows * kvw;
      split_[0].infer(x, rows, q, pool);
      split_[1].infer(x, rows, k, pool);
      split_[2].infer(x, rows, v, pool);
      q_stride = qw;
      kv_stride = kvw;
    }
    const std::size_t pos0 = cache.position;
    for (std::size_t t = 0; t < rows; ++t) {
      const std::span<float> qt(q + t * q_stride, qw), kt(k + t * kv_stride, kvw), vt(v + t * kv_stride, kvw);
      if (options_.rope) {
        kernels::rope(qt, head_dim_, how.rope->cos(pos0 + t), how.rope->sin(pos0 + t), options_.rope->style);
        kernels::rope(kt, head_dim_, how.rope->cos(pos0 + t), how.rope->sin(pos0 + t), options_.rope->style);
      }
      if (how.precision == attention_precision::llama_cpp_f16)
        for (const std::span<float> part : {qt, kt, vt}) round_to_f16(part);
      std::ranges::copy(kt, cache.keys + (pos0 + t) * kvw);
      std::ranges::copy(vt, cache.values + (pos0 + t) * kvw);
    }

    float* attention = scratch.data() + rows * qkv_width();
    const std::size_t group = heads_ / kv_heads_;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
    // About 64 key positions of work per task, at least.
    const std::size_t grain = std::max<std::size_t>(1, 64 * heads_ / (pos0 + rows) / std::max<std::size_t>(1, rows));
    pool.for_each_chunk(rows * heads_, grain, [&](std::size_t begin, std::size_t end) {
      thread_local std::vector<float> scores;
      for (std::size_t task = begin; task < end; ++task) {
        const std::size_t t = task / heads_, head = task % heads_, g = head / group;
        const std::size_t n = pos0 + t + 1;
        if (scores.size() < n) scores.resize(n);
        const std::span<const float> qh(q + t * q_stride + head * head_dim_, head_dim_);
        const std::span<float> out(attention + t * qw + head * head_dim_, head_dim_);
        if (how.precision == attention_precision::llama_cpp_f16) {
          attend_f16_online(qh, cache.keys + g * head_dim_, cache.values + g * head_dim_, kvw, n, scale, out);
          continue;
        }
        kernels::attend_query(qh, cache.keys + g * head_dim_, cache.values + g * head_dim_, kvw, n, scale,
                              {scores.data(), n}, out);
        if (how.record && t == rows - 1) std::copy_n(scores.data(), n, how.record + head * how.record_stride);
      }
    });
    c_proj_.infer(attention, rows, y, pool);
  }

  void reserve(activation_arena& arena, batch_shape shape) {
    shape_ = shape;
    const std::size_t rows = shape.rows(), t = shape.time;
    c_attn_.reserve(arena, shape);
    c_proj_.reserve(arena, shape);
    if (options_.rope) {
      rotated_ = arena.take(rows * qkv_width());
      if (rope_.positions() < t) rope_ = rope_table(t, head_dim_, options_.rope->base);
    }
    probs_ = arena.take(shape.batch * heads_ * t * t);
    if (options_.dropout > 0.0f) dropped_ = arena.take(shape.batch * heads_ * t * t);
    y_ = arena.take(rows * heads_ * head_dim_);
    dqkv_ = arena.take(rows * qkv_width());
    dscores_ = arena.take(shape.batch * kv_heads_ * t * t);
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    require<argument_error>(split_.empty(), "self_attention: separate q, k, v projections are a model file's (frozen): "
                            "this layer runs infer");
    const_matrix qkv = c_attn_.forward(x, ctx);
    dropout_active_ = ctx.training && options_.dropout > 0.0f;
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
      const float* weights = dropout_active_ ? drop_weights(ctx, task, p) : p;
      kernels::gemm({t, head_dim_, t, {weights, dtype::f32, t, false}, {v, dtype::f32, stride, false},
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
        const float* weights = dropout_active_ ? dropped_.data() + (b * heads_ + h) * t * t : p;
        const bool first = h == g * group;
        // dV += W^T dY;  dP = dY V^T (W = P, or P with dropout's mask M: then dP = (dY V^T) * M)
        kernels::gemm({t, head_dim_, t, {weights, dtype::f32, t, true}, {dyh, dtype::f32, y_stride, false}, dv, stride,
                       !first});
        kernels::gemm({t, t, head_dim_, {dyh, dtype::f32, y_stride, false}, {v, dtype::f32, stride, true}, ds, t, false});
        if (dropout_active_) {
          // M is keep_scale where W kept a weight, 0 where it dropped one; where P itself is 0 the
          // mask does not matter (dS = P * ...).
          const float keep_scale = 1.0f / (1.0f - options_.dropout);
          for (std::size_t i = 0; i < t * t; ++i) ds[i] = weights[i] != 0.0f ? ds[i] * keep_scale : 0.0f;
        }
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
    if (!split_.empty()) return;  // a model file's frozen projections
    c_attn_.visit_parameters(visit, join_name(prefix, "c_attn"));
    c_proj_.visit_parameters(visit, join_name(prefix, "c_proj"));
  }

 private:
  static std::size_t check_heads(std::size_t width, const attention_options& o) {
    const std::size_t kv = o.kv_heads == 0 ? o.heads : o.kv_heads;
    require<argument_error>(o.heads > 0 && (o.head_dim > 0 || width % o.heads == 0), "self_attention: width ", width,
                            " is not a multiple of ", o.heads, " heads");
    require<argument_error>(kv > 0 && o.heads % kv == 0, "self_attention: ", o.heads,
                            " query heads cannot share ", kv, " key/value heads evenly");
    require<argument_error>(o.dropout >= 0.0f && o.dropout < 1.0f, "self_attention: dropout ", o.dropout,
                            " is not in [0, 1)");
    const std::size_t head_dim = o.head_dim ? o.head_dim : width / o.heads;
    require<argument_error>(!o.rope || head_dim % 2 == 0, "self_attention: RoPE needs an even head size, got ", head_dim);
    return head_dim;
  }
  std::size_t qkv_width() const { return (heads_ + 2 * kv_heads_) * head_dim_; }

  /// The attention weights of (sequence, head) `task` with dropout: nn::dropout_mask at the
  /// weights' positions in the layer's [batch, heads, T, T] array, times the weights.
  const float* drop_weights(const run_context& ctx, std::size_t task, const float* p) {
    const std::size_t n = shape_.time * shape_.time;
    const std::span<float> out = dropped_.subspan(task * n, n);
    dropout_mask(ctx, options_.dropout_salt, task * n, options_.dropout, out);
    kernels::mul(out, std::span<const float>(p, n), out);
    return out.data();
  }

  /// llama.cpp's CPU flash attention for one query: keys in order, a running maximum M and sum S of
  /// exp(s - M), and the weighted values accumulated in f16 (rounded after every update, as its f16
  /// accumulator is), divided by S at the end. Scalar: it is a compatibility mode, not the fast path.
  static void attend_f16_online(std::span<const float> q, const float* keys, const float* values, std::size_t stride,
                                std::size_t n, float scale, std::span<float> out) {
    std::ranges::fill(out, 0.0f);
    float max = -std::numeric_limits<float>::infinity(), sum = 0.0f;
    for (std::size_t j = 0; j < n; ++j) {
      const float s = kernels::dot(q, {keys + j * stride, q.size()}) * scale;
      float rescale = 1.0f, weight = 1.0f;
      if (s > max) {
        rescale = std::exp(max - s);
        max = s;
        for (float& o : out) o = to_f16_precision(o * rescale);
      } else {
        weight = std::exp(s - max);
      }
      const float* v = values + j * stride;
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_f16_precision(out[i] + v[i] * weight);
      sum = sum * rescale + weight;
    }
    for (float& o : out) o /= sum;
  }
  static float to_f16_precision(float x) { return f16::from_float(x).to_float(); }
  static void round_to_f16(std::span<float> x) {
    for (float& e : x) e = to_f16_precision(e);
  }

  /// Copies qkv with the query and key parts rotated by their positions.
  const_matrix rotate(const_matrix qkv, const run_context& ctx) {
    const std::size_t stride = qkv_width();
    std::copy(qkv.data(), qkv.data() + shape_.rows() * stride, rotated_.begin());
    ctx.pool->for_each_chunk(shape_.rows(), detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const std::size_t pos = r % shape_.time;
        kernels::rope(rotated_.subspan(r * stride, (heads_ + kv_heads_) * head_dim_), head_dim_, rope_.cos(pos),
                      rope_.sin(pos), options_.rope->style);
      }
    });
    return as_matrix(std::span<const float>(rotated_), shape_.rows(), stride);
  }
  /// The rotation is orthogonal: its backward is the inverse rotation of the gradient.
  void unrotate_gradient(const run_context& ctx) {
    const std::size_t stride = qkv_width();
    ctx.pool->for_each_chunk(shape_.rows(), detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const std::size_t pos = r % shape_.time;
        kernels::rope_backward(dqkv_.subspan(r * stride, (heads_ + kv_heads_) * head_dim_), head_dim_, rope_.cos(pos),
                               rope_.sin(pos), options_.rope->style);
      }
    });
  }

  std::size_t width_, heads_, kv_heads_, head_dim_;
  attention_options options_;
  linear<> c_attn_, c_proj_;  // c_attn_: the fused [q; k; v] projection (no outputs when split_)
  std::vector<linear<>> split_;  // a model file's separate q, k, v projections, else empty
  rope_table rope_;              // training: the angles of positions 0 .. time - 1
  batch_shape shape_;
  const_matrix qkv_;
  std::span<float> rotated_, probs_, dropped_, y_, dqkv_, dscores_;
  bool dropout_active_ = false;
};

}  // namespace lmkit::nn
