// One pre-norm transformer layer, read top to bottom:
//   x = x + dropout(attn(ln_1(x)))
//   x = x + dropout(mlp(ln_2(x)))
// (GPT-2's residual dropout; none by default).
// GPT-2 uses layer norm and a GELU MLP; Llama uses RMS norm, rotary attention and SwiGLU: the same
// block with other parts. The same block, built of frozen parts, runs a pretrained model (`infer`).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/dropout.hpp"
#include "lmkit/nn/self_attention.hpp"
#include "lmkit/nn/sequential.hpp"

namespace lmkit::nn {

template <class Norm, class Attention, class FeedForward>
class transformer_block {
  static_assert(detail::check_part<Norm>() && detail::check_part<Attention>() && detail::check_part<FeedForward>());
  static_assert(detail::widths_agree(Norm::out_width, Attention::in_width) &&
                    detail::widths_agree(Attention::out_width, FeedForward::in_width) &&
                    detail::widths_agree(FeedForward::out_width, Norm::in_width),
                "nn::transformer_block: the norm, attention and feed-forward widths differ");

 public:
  static constexpr std::size_t in_width = Norm::in_width;
  static constexpr std::size_t out_width = Norm::in_width;

  /// `residual_dropout`: the probability of the residual branches' dropout while training; `salt` sets this
  /// block's masks apart from the other blocks' (its two layers use 2 salt and 2 salt + 1).
  transformer_block(Norm ln_1, Attention attn, Norm ln_2, FeedForward mlp, float residual_dropout = 0.0f,
                    std::uint64_t salt = 0)
      : ln_1_(std::move(ln_1)),
        attn_(std::move(attn)),
        ln_2_(std::move(ln_2)),
        mlp_(std::move(mlp)),
        drop_attn_(ln_1_.in_features(), residual_dropout, 2 * salt),
        drop_mlp_(ln_1_.in_features(), residual_dropout, 2 * salt + 1) {
    require<shape_error>(attn_.in_features() == ln_1_.out_features() && mlp_.in_features() == ln_1_.out_features() &&
                             mlp_.out_features() == ln_1_.out_features(),
                         "nn::transformer_block: the norm, attention and feed-forward widths differ");
  }

  std::size_t in_features() const { return ln_1_.in_features(); }
  std::size_t out_features() const { return ln_1_.in_features(); }
  Norm& ln_1() { return ln_1_; }
  Attention& attn() { return attn_; }
  Norm& ln_2() { return ln_2_; }
  FeedForward& mlp() { return mlp_; }

  /// Floats of scratch that `infer` needs for `rows` new tokens.
  std::size_t infer_scratch(std::size_t rows) const {
    return 2 * rows * in_features() + std::max(attn_.infer_scratch(rows), mlp_.infer_scratch(rows));
  }

  /// The residual stream x [rows, width] of `rows` new tokens, updated in place for inference:
  /// x += attn(ln_1(x)) against the KV cache rows of this layer; x += mlp(ln_2(x)).
  void infer(float* x, std::size_t rows, kv_rows cache, const attention_inference& how, std::span<float> scratch,
             const thread_pool& pool) const {
    const std::size_t n = rows * in_features();
    float* h = scratch.data();
    float* out = h + n;
    const std::span<float> rest = scratch.subspan(2 * n);
    ln_1_.infer(x, rows, h);
    attn_.infer(h, rows, cache, how, out, rest, pool);
    kernels::add({x, n}, {out, n}, {x, n});
    ln_2_.infer(x, rows, h);
    mlp_.infer(h, rows, out, rest, pool);
    kernels::add({x, n}, {out, n}, {x, n});
  }

  void reserve(activation_arena& arena, batch_shape shape) {
    ln_1_.reserve(arena, shape);
    attn_.reserve(arena, shape);
    ln_2_.reserve(arena, shape);
    mlp_.reserve(arena, shape);
    drop_attn_.reserve(arena, shape);
    drop_mlp_.reserve(arena, shape);
    rows_ = shape.rows();
    mid_ = arena.take(rows_ * in_features());
    out_ = arena.take(rows_ * in_features());
    dmid_ = arena.take(rows_ * in_features());
    dx_ = arena.take(rows_ * in_features());
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    const const_matrix a = drop_attn_.forward(attn_.forward(ln_1_.forward(x, ctx), ctx), ctx);
    detail::parallel_add(ctx, x.span(), a.span(), mid_);
    const const_matrix mid = as_matrix(std::span<const float>(mid_), rows_, in_features());
    const const_matrix m = drop_mlp_.forward(mlp_.forward(ln_2_.forward(mid, ctx), ctx), ctx);
    detail::parallel_add(ctx, mid_, m.span(), out_);
    return as_matrix(std::span<const float>(out_), rows_, in_features());
  }

  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const const_matrix dm = ln_2_.backward(mlp_.backward(drop_mlp_.backward(dy, ctx), ctx), ctx);
    detail::parallel_add(ctx, dy.span(), dm.span(), dmid_);
    const const_matrix dmid = as_matrix(std::span<const float>(dmid_), rows_, in_features());
    const const_matrix da = ln_1_.backward(attn_.backward(drop_attn_.backward(dmid, ctx), ctx), ctx);
    detail::parallel_add(ctx, dmid_, da.span(), dx_);
    return as_matrix(std::span<const float>(dx_), rows_, in_features());
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    ln_1_.visit_parameters(visit, join_name(prefix, "ln_1"));
    attn_.visit_parameters(visit, join_name(prefix, "attn"));
    ln_2_.visit_parameters(visit, join_name(prefix, "ln_2"));
    mlp_.visit_parameters(visit, join_name(prefix, "mlp"));
  }

 private:
  Norm ln_1_;
  Attention attn_;
  Norm ln_2_;
  FeedForward mlp_;
  dropout<Norm::in_width> drop_attn_, drop_mlp_;
  std::size_t rows_ = 0;
  std::span<float> mid_, out_, dmid_, dx_;
};

}  // namespace lmkit::nn
