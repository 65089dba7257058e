// The kernels' public entry points. Each call is dispatched at run time to the best Highway target
// this CPU supports (AVX-512, AVX2, SSE4, or scalar), and checks its arguments' shapes first.
//
// Conventions: vectors are std::span; a backward kernel *adds* into its gradient outputs (like
// llm.c), so the caller zeroes them once and several paths may contribute.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/core/tensor.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/kernels/amx_gemm.hpp"
#include "lmkit/kernels/gemm_problem.hpp"
#include "lmkit/kernels/optimizer_coefficients.hpp"
#include "lmkit/kernels/prepacked_matrix.hpp"

// Where the kernels' machine code comes from (docs/kernels.md, "Compiling the kernels once"):
// - by default, every translation unit that calls a kernel compiles it for every target, and the
//   linker keeps one copy: header-only, nothing to set up;
// - a program of many translation units may compile them once instead, most of its build time:
//   every unit defines LMKIT_KERNELS_DEFINED_ELSEWHERE and sees only the dispatch tables'
//   declarations, and exactly one unit defines LMKIT_KERNELS_DEFINE_HERE and holds the tables.
#if defined(LMKIT_KERNELS_DEFINED_ELSEWHERE) && defined(LMKIT_KERNELS_DEFINE_HERE)
#error "define LMKIT_KERNELS_DEFINED_ELSEWHERE or LMKIT_KERNELS_DEFINE_HERE, not both"
#endif
#ifndef LMKIT_KERNELS_DEFINED_ELSEWHERE
// One per-target pass over every kernel (see docs/kernels.md), then the baseline target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lmkit/kernels/all-inl.hpp"
#include <hwy/foreach_target.h>  // must come before highway.h
#endif

#include <hwy/highway.h>

// The baseline target's copy. With the tables defined elsewhere it only gives their types: no
// table refers to it, so none of it is compiled here.
#include "lmkit/kernels/all-inl.hpp"

namespace lmkit::kernels {

// One dispatch table per kernel for the whole program: HWY_EXPORT's `static` table would give every
// translation unit its own copy (an ODR violation when the header is included twice). Header-only,
// the table is an `inline` variable; compiled once, it is declared `extern` everywhere and defined
// in the one unit that compiles the kernels.
#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0
#define LMKIT_TABLE_SIZE 1
#define LMKIT_TABLE_ENTRIES(NAME) &HWY_STATIC_DISPATCH(NAME)
#else
#define LMKIT_TABLE_SIZE (HWY_MAX_DYNAMIC_TARGETS + 2)
#define LMKIT_TABLE_ENTRIES(NAME)                                                                                 \
  &decltype(hwy::DeduceFunctionCache(&HWY_STATIC_DISPATCH(NAME)))::ChooseAndCall<HWY_DISPATCH_TABLE(NAME)>,         \
      HWY_CHOOSE_TARGET_LIST(NAME), HWY_CHOOSE_FALLBACK(NAME)
#endif
#define LMKIT_TABLE(NAME) decltype(&HWY_STATIC_DISPATCH(NAME)) const HWY_DISPATCH_TABLE(NAME)[LMKIT_TABLE_SIZE]
#if defined(LMKIT_KERNELS_DEFINED_ELSEWHERE)
#define LMKIT_EXPORT(NAME) extern LMKIT_TABLE(NAME)
#elif defined(LMKIT_KERNELS_DEFINE_HERE)
#define LMKIT_EXPORT(NAME) extern LMKIT_TABLE(NAME) = {LMKIT_TABLE_ENTRIES(NAME)}
#else
#define LMKIT_EXPORT(NAME) inline LMKIT_TABLE(NAME) = {LMKIT_TABLE_ENTRIES(NAME)}
#endif

LMKIT_EXPORT(target_name);
LMKIT_EXPORT(add);
LMKIT_EXPORT(mul);
LMKIT_EXPORT(scale);
LMKIT_EXPORT(axpy);
LMKIT_EXPORT(f32_to_bf16);
LMKIT_EXPORT(f32_to_f16);
LMKIT_EXPORT(bf16_to_f32);
LMKIT_EXPORT(f16_to_f32);
LMKIT_EXPORT(softmax);
LMKIT_EXPORT(exp_shifted);
LMKIT_EXPORT(log_softmax);
LMKIT_EXPORT(softmax_backward);
LMKIT_EXPORT(log_softmax_backward);
LMKIT_EXPORT(layer_norm);
LMKIT_EXPORT(layer_norm_backward);
LMKIT_EXPORT(rms_norm);
LMKIT_EXPORT(rms_norm_backward);
LMKIT_EXPORT(gelu_tanh);
LMKIT_EXPORT(gelu_erf);
LMKIT_EXPORT(silu);
LMKIT_EXPORT(gelu_tanh_backward);
LMKIT_EXPORT(gelu_erf_backward);
LMKIT_EXPORT(silu_backward);
LMKIT_EXPORT(rope_half);
LMKIT_EXPORT(rope_adjacent);
LMKIT_EXPORT(lstm_cell);
LMKIT_EXPORT(lstm_cell_backward);
LMKIT_EXPORT(elman_cell);
LMKIT_EXPORT(elman_cell_backward);
LMKIT_EXPORT(gemm);
LMKIT_EXPORT(gemm_prepacked);
LMKIT_EXPORT(gemm_tn);
LMKIT_EXPORT(gemm_nt_direct);
LMKIT_EXPORT(dot);
LMKIT_EXPORT(attend_query);
LMKIT_EXPORT(adam_update);
LMKIT_EXPORT(quantize_q8_0);
LMKIT_EXPORT(quantize_q4_0);
LMKIT_EXPORT(dequantize_q8_0);
LMKIT_EXPORT(dequantize_q4_0);
LMKIT_EXPORT(matmul_quant);

#undef LMKIT_EXPORT
#undef LMKIT_TABLE
#undef LMKIT_TABLE_ENTRIES
#undef LMKIT_TABLE_SIZE

namespace detail {
inline void same_size(std::size_t a, std::size_t b, const char* what) {
  require<shape_error>(a == b, what, ": sizes differ (", a, " vs ", b, ")");
}
}  // namespace detail

/// The Highway target that calls dispatch to now (for example "AVX2").
inline const char* active_target() { return HWY_DYNAMIC_DISPATCH(target_name)(); }

// ---- element-wise -------------------------------------------------------------------------

/// out = a + b
inline void add(std::span<const float> a, std::span<const float> b, std::span<float> out) {
  detail::same_size(a.size(), b.size(), "add");
  detail::same_size(a.size(), out.size(), "add");
  HWY_DYNAMIC_DISPATCH(add)(a.data(), b.data(), out.data(), a.size());
}
/// out = a * b
inline void mul(std::span<const float> a, std::span<const float> b, std::span<float> out) {
  detail::same_size(a.size(), b.size(), "mul");
  detail::same_size(a.size(), out.size(), "mul");
  HWY_DYNAMIC_DISPATCH(mul)(a.data(), b.data(), out.data(), a.size());
}
/// out = s * x
inline void scale(std::span<const float> x, float s, std::span<float> out) {
  detail::same_size(x.size(), out.size(), "scale");
  HWY_DYNAMIC_DISPATCH(scale)(x.data(), s, out.data(), x.size());
}
/// y += alpha * x
inline void axpy(float alpha, std::span<const float> x, std::span<float> y) {
  detail::same_size(x.size(), y.size(), "axpy");
  HWY_DYNAMIC_DISPATCH(axpy)(alpha, x.data(), y.data(), x.size());
}
/// <a, b>
inline float dot(std::span<const float> a, std::span<const float> b) {
  detail::same_size(a.size(), b.size(), "dot");
  return HWY_DYNAMIC_DISPATCH(dot)(a.data(), b.data(), a.size());
}

// ---- attention -----------------------------------------------------------------------------

/// One query's attention over n cached positions: out = sum_j softmax_j(scale * q . K_j) V_j, with
/// K_j = keys[j * stride, + q.size()) and V_j likewise in values. `scores` (at least n) is scratch
/// and holds the attention weights on return.
inline void attend_query(std::span<const float> q, const float* keys, const float* values, std::size_t stride,
                         std::size_t n, float scale, std::span<float> scores, std::span<float> out) {
  detail::same_size(out.size(), q.size(), "attend_query out");
  require<shape_error>(scores.size() >= n, "attend_query: ", scores.size(), " scores for ", n, " positions");
  require<shape_error>(n == 0 || (keys && values && stride >= q.size()), "attend_query: key/value rows of stride ",
                       stride, " cannot hold heads of ", q.size());
  HWY_DYNAMIC_DISPATCH(attend_query)(q.data(), keys, values, stride, n, q.size(), scale, scores.data(), out.data());
}

// ---- optimizer updates -------------------------------------------------------------------

/// One Adam / AdamW step over a parameter w with gradient g and moments m, v (all the same size).
inline void adam_update(std::span<float> w, std::span<const float> g, std::span<float> m, std::span<float> v,
                        const adam_coefficients& c) {
  detail::same_size(w.size(), g.size(), "adam_update gradient");
  detail::same_size(w.size(), m.size(), "adam_update first moment");
  detail::same_size(w.size(), v.size(), "adam_update second moment");
  HWY_DYNAMIC_DISPATCH(adam_update)(w.data(), g.data(), m.data(), v.data(), w.size(), c);
}

// ---- conversions (round to nearest even) --------------------------------------------------

inline void convert(std::span<const float> in, std::span<bf16> out) {
  detail::same_size(in.size(), out.size(), "convert f32 -> bf16");
  HWY_DYNAMIC_DISPATCH(f32_to_bf16)(in.data(), reinterpret_cast<std::uint16_t*>(out.data()), in.size());
}
inline void convert(std::span<const float> in, std::span<f16> out) {
  detail::same_size(in.size(), out.size(), "convert f32 -> f16");
  HWY_DYNAMIC_DISPATCH(f32_to_f16)(in.data(), reinterpret_cast<std::uint16_t*>(out.data()), in.size());
}
inline void convert(std::span<const bf16> in, std::span<float> out) {
  detail::same_size(in.size(), out.size(), "convert bf16 -> f32");
  HWY_DYNAMIC_DISPATCH(bf16_to_f32)(reinterpret_cast<const std::uint16_t*>(in.data()), out.data(), in.size());
}
inline void convert(std::span<const f16> in, std::span<float> out) {
  detail::same_size(in.size(), out.size(), "convert f16 -> f32");
  HWY_DYNAMIC_DISPATCH(f16_to_f32)(reinterpret_cast<const std::uint16_t*>(in.data()), out.data(), in.size());
}

// ---- softmax ------------------------------------------------------------------------------

/// out = exp(x - max) / sum(exp(x - max)); out may be x.
inline void softmax(std::span<const float> x, std::span<float> out) {
  detail::same_size(x.size(), out.size(), "softmax");
  HWY_DYNAMIC_DISPATCH(softmax)(x.data(), out.data(), x.size());
}
/// out[i] = exp(x[i] - shift); returns their sum (in float, lane by lane). out may be x. The
/// unnormalised weights of a softmax whose maximum the caller knows (a sampler's draw).
inline float exp_shifted(std::span<const float> x, float shift, std::span<float> out) {
  detail::same_size(x.size(), out.size(), "exp_shifted");
  return HWY_DYNAMIC_DISPATCH(exp_shifted)(x.data(), shift, out.data(), x.size());
}

/// out = x - max - log(sum(exp(x - max))); out may be x.
inline void log_softmax(std::span<const float> x, std::span<float> out) {
  detail::same_size(x.size(), out.size(), "log_softmax");
  HWY_DYNAMIC_DISPATCH(log_softmax)(x.data(), out.data(), x.size());
}
/// dx += y * (dy - <dy, y>) where y = softmax(x).
inline void softmax_backward(std::span<const float> y, std::span<const float> dy, std::span<float> dx) {
  detail::same_size(y.size(), dy.size(), "softmax_backward");
  detail::same_size(y.size(), dx.size(), "softmax_backward");
  HWY_DYNAMIC_DISPATCH(softmax_backward)(y.data(), dy.data(), dx.data(), y.size());
}
/// dx += dy - exp(y) * sum(dy) where y = log_softmax(x).
inline void log_softmax_backward(std::span<const float> y, std::span<const float> dy, std::span<float> dx) {
  detail::same_size(y.size(), dy.size(), "log_softmax_backward");
  detail::same_size(y.size(), dx.size(), "log_softmax_backward");
  HWY_DYNAMIC_DISPATCH(log_softmax_backward)(y.data(), dy.data(), dx.data(), y.size());
}

// ---- normalisation ------------------------------------------------------------------------

/// What a norm's forward keeps for its backward.
struct norm_stats {
  float mean = 0.0f;  // 0 for RMS norm
  float rstd = 0.0f;  // 1 / sqrt(variance + eps), or 1 / sqrt(mean square + eps)
};

/// out = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias. An empty `bias` means none.
inline norm_stats layer_norm(std::span<const float> x, std::span<const float> weight, std::span<const float> bias,
                             std::span<float> out, float eps = 1e-5f) {
  detail::same_size(x.size(), weight.size(), "layer_norm weight");
  detail::same_size(x.size(), out.size(), "layer_norm output");
  if (!bias.empty()) detail::same_size(x.size(), bias.size(), "layer_norm bias");
  norm_stats stats;
  HWY_DYNAMIC_DISPATCH(layer_norm)(x.data(), weight.data(), bias.empty() ? nullptr : bias.data(), out.data(), x.size(),
                                   eps, &stats.mean, &stats.rstd);
  return stats;
}
/// Adds the gradients of layer_norm to dx, dweight and dbias (an empty dbias means no bias).
inline void layer_norm_backward(std::span<const float> x, std::span<const float> weight, norm_stats stats,
                                std::span<const float> dy, std::span<float> dx, std::span<float> dweight,
                                std::span<float> dbias) {
  detail::same_size(x.size(), weight.size(), "layer_norm_backward weight");
  detail::same_size(x.size(), dy.size(), "layer_norm_backward dy");
  detail::same_size(x.size(), dx.size(), "layer_norm_backward dx");
  detail::same_size(x.size(), dweight.size(), "layer_norm_backward dweight");
  if (!dbias.empty()) detail::same_size(x.size(), dbias.size(), "layer_norm_backward dbias");
  HWY_DYNAMIC_DISPATCH(layer_norm_backward)(x.data(), weight.data(), stats.mean, stats.rstd, dy.data(), dx.data(),
                                            dweight.data(), dbias.empty() ? nullptr : dbias.data(), x.size());
}
/// out = x / sqrt(mean(x^2) + eps) * weight.
inline norm_stats rms_norm(std::span<const float> x, std::span<const float> weight, std::span<float> out,
                           float eps = 1e-5f) {
  detail::same_size(x.size(), weight.size(), "rms_norm weight");
  detail::same_size(x.size(), out.size(), "rms_norm output");
  norm_stats stats;
  HWY_DYNAMIC_DISPATCH(rms_norm)(x.data(), weight.data(), out.data(), x.size(), eps, &stats.rstd);
  return stats;
}
/// Adds the gradients of rms_norm to dx and dweight.
inline void rms_norm_backward(std::span<const float> x, std::span<const float> weight, norm_stats stats,
                              std::span<const float> dy, std::span<float> dx, std::span<float> dweight) {
  detail::same_size(x.size(), weight.size(), "rms_norm_backward weight");
  detail::same_size(x.size(), dy.size(), "rms_norm_backward dy");
  detail::same_size(x.size(), dx.size(), "rms_norm_backward dx");
  detail::same_size(x.size(), dweight.size(), "rms_norm_backward dweight");
  HWY_DYNAMIC_DISPATCH(rms_norm_backward)(x.data(), weight.data(), stats.rstd, dy.data(), dx.data(), dweight.data(),
                                          x.size());
}

// ---- activations --------------------------------------------------------------------------

#define LMKIT_ACTIVATION(NAME)                                                                          \
  inline void NAME(std::span<const float> x, std::span<float> out) {                                   \
    detail::same_size(x.size(), out.size(), #NAME);                                                     \
    HWY_DYNAMIC_DISPATCH(NAME)(x.data(), out.data(), x.size());                                         \
  }                                                                                                     \
  inline void NAME##_backward(std::span<const float> x, std::span<const float> dy, std::span<float> dx,   \
                              bool accumulate = true) {                                                 \
    detail::same_size(x.size(), dy.size(), #NAME "_backward");                                          \
    detail::same_size(x.size(), dx.size(), #NAME "_backward");                                          \
    HWY_DYNAMIC_DISPATCH(NAME##_backward)(x.data(), dy.data(), dx.data(), x.size(), accumulate);        \
  }
/// GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); backward adds
/// dy f'(x) to dx, or writes it there when not `accumulate`.
LMKIT_ACTIVATION(gelu_tanh)
/// GELU, exact: 0.5 x (1 + erf(x / sqrt 2)) (BERT, PyTorch's default).
LMKIT_ACTIVATION(gelu_erf)
/// SiLU (swish): x sigmoid(x) (Llama's SwiGLU gate).
LMKIT_ACTIVATION(silu)
#undef LMKIT_ACTIVATION

// ---- rotary position embedding --------------------------------------------------------------

/// Which dimensions RoPE rotates together.
enum class rope_style {
  adjacent_pairs,  // (x[2i], x[2i+1]): llama2.c, GGUF / llama.cpp
  half_rotation,   // (x[i], x[i + d/2]): Hugging Face transformers
};

/// cos and sin of the angles pos * base^(-2i / head_dim), i < head_dim / 2, computed in double.
inline void rope_angles(std::size_t position, std::size_t head_dim, double base, std::span<float> cos,
                        std::span<float> sin) {
  require<argument_error>(head_dim % 2 == 0, "rope_angles: head_dim must be even, got ", head_dim);
  detail::same_size(cos.size(), head_dim / 2, "rope_angles cos");
  detail::same_size(sin.size(), head_dim / 2, "rope_angles sin");
  for (std::size_t i = 0; i < head_dim / 2; ++i) {
    const double angle = static_cast<double>(position) * std::pow(base, -2.0 * static_cast<double>(i) / head_dim);
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
}

/// Rotates x (heads vectors of head_dim, back to back) in place by the angles in cos/sin.
/// `inverse` rotates the other way; it is also the backward (the rotation is orthogonal).
inline void rope(std::span<float> x, std::size_t head_dim, std::span<const float> cos, std::span<const float> sin,
                 rope_style style, bool inverse = false) {
  require<argument_error>(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim must be even and positive, got ", head_dim);
  require<shape_error>(x.size() % head_dim == 0, "rope: ", x.size(), " elements are not whole heads of ", head_dim);
  detail::same_size(cos.size(), head_dim / 2, "rope cos");
  detail::same_size(sin.size(), head_dim / 2, "rope sin");
  const std::size_t heads = x.size() / head_dim;
  if (style == rope_style::half_rotation)
    HWY_DYNAMIC_DISPATCH(rope_half)(x.data(), head_dim, heads, cos.data(), sin.data(), inverse);
  else
    HWY_DYNAMIC_DISPATCH(rope_adjacent)(x.data(), head_dim, heads, cos.data(), sin.data(), inverse);
}
/// The gradient through rope: rotates dx (in place) back by the same angles.
inline void rope_backward(std::span<float> dx, std::size_t head_dim, std::span<const float> cos,
                          std::span<const float> sin, rope_style style) {
  rope(dx, head_dim, cos, sin, style, /*inverse=*/true);
}

// ---- recurrent cells ----------------------------------------------------------------------

/// One LSTM step of one sequence with H = c.size() units, gates in PyTorch's order (i, f, g, o):
/// `gates` [4H] holds the pre-activations (without the biases) on entry and the activations
/// (sigmoid i, f, o; tanh g) on exit; c = f * c_prev + i * g; h = o * tanh(c).
inline void lstm_cell(std::span<float> gates, std::span<const float> bias, std::span<const float> c_prev,
                      std::span<float> c, std::span<float> h) {
  const std::size_t n = c.size();
  detail::same_size(gates.size(), 4 * n, "lstm_cell gates (4 x hidden)");
  detail::same_size(bias.size(), 4 * n, "lstm_cell bias (4 x hidden)");
  detail::same_size(c_prev.size(), n, "lstm_cell c_prev");
  detail::same_size(h.size(), n, "lstm_cell h");
  HWY_DYNAMIC_DISPATCH(lstm_cell)(gates.data(), bias.data(), c_prev.data(), c.data(), h.data(), n);
}
/// The step's backward: from the activations in `gates` [4H] to the gradients of the
/// pre-activations in `dpre` [4H] (which may be `gates` itself). dL/dh = dy + dh (from the layer
/// above and from the next step); `dc` holds dL/dc on entry and dL/dc_prev on exit.
inline void lstm_cell_backward(std::span<const float> gates, std::span<float> dpre, std::span<const float> c_prev,
                               std::span<const float> c, std::span<const float> dy, std::span<const float> dh,
                               std::span<float> dc) {
  const std::size_t n = c.size();
  detail::same_size(gates.size(), 4 * n, "lstm_cell_backward gates (4 x hidden)");
  detail::same_size(dpre.size(), 4 * n, "lstm_cell_backward dpre (4 x hidden)");
  detail::same_size(c_prev.size(), n, "lstm_cell_backward c_prev");
  detail::same_size(dy.size(), n, "lstm_cell_backward dy");
  detail::same_size(dh.size(), n, "lstm_cell_backward dh");
  detail::same_size(dc.size(), n, "lstm_cell_backward dc");
  HWY_DYNAMIC_DISPATCH(lstm_cell_backward)(gates.data(), dpre.data(), c_prev.data(), c.data(), dy.data(), dh.data(),
                                           dc.data(), n);
}
/// One Elman step: `gates` [H] holds the pre-activations (without the bias) on entry and
/// h = tanh(pre + bias) on exit; h is also written to `h`.
inline void elman_cell(std::span<float> gates, std::span<const float> bias, std::span<float> h) {
  detail::same_size(gates.size(), h.size(), "elman_cell gates");
  detail::same_size(bias.size(), h.size(), "elman_cell bias");
  HWY_DYNAMIC_DISPATCH(elman_cell)(gates.data(), bias.data(), h.data(), h.size());
}
/// Its backward: from h in `gates` [H] to dL/dpre = (dy + dh) (1 - h^2) in `dpre` (which may be `gates`).
inline void elman_cell_backward(std::span<const float> gates, std::span<float> dpre, std::span<const float> dy,
                                std::span<const float> dh) {
  detail::same_size(dpre.size(), gates.size(), "elman_cell_backward dpre");
  detail::same_size(dy.size(), gates.size(), "elman_cell_backward dy");
  detail::same_size(dh.size(), gates.size(), "elman_cell_backward dh");
  HWY_DYNAMIC_DISPATCH(elman_cell_backward)(gates.data(), dpre.data(), dy.data(), dh.data(), gates.size());
}

// ---- matrix products ----------------------------------------------------------------------

namespace detail {
/// A compact bf16 copy of an operand (rows x cols as the product sees it), in its stored layout.
inline matrix_operand rounded_to_bf16(const matrix_operand& op, std::size_t rows, std::size_t cols, std::vector<bf16>& store) {
  if (op.type == dtype::bf16 || rows * cols == 0) return op;
  const std::size_t stored_rows = op.transposed ? cols : rows, stored_cols = op.transposed ? rows : cols;
  store.resize(stored_rows * stored_cols);
  std::vector<float> widened(op.type == dtype::f16 ? stored_cols : 0);
  for (std::size_t r = 0; r < stored_rows; ++r) {
    const std::span<bf16> out{store.data() + r * stored_cols, stored_cols};
    if (op.type == dtype::f32) {
      convert({static_cast<const float*>(op.data) + r * op.stride, stored_cols}, out);
    } else {
      convert({static_cast<const f16*>(op.data) + r * op.stride, stored_cols}, std::span<float>{widened});
      convert(std::span<const float>{widened}, out);
    }
  }
  return {store.data(), dtype::bf16, stored_cols, op.transposed};
}

/// bf16 products without AMX or AVX512-BF16: the operands rounded to bf16 once, then the f32
/// kernel, whose products of bf16 values are exact -- the same terms as on the tiles, summed in
/// another order.
inline void gemm_bf16_portable(const gemm_problem& g, const thread_pool& pool) {
  std::vector<bf16> a_rounded, b_rounded;
  gemm_problem rounded = g;
  rounded.products = product_precision::f32;
  rounded.a = rounded_to_bf16(g.a, g.m, g.k, a_rounded);
  rounded.b = rounded_to_bf16(g.b, g.k, g.n, b_rounded);
  HWY_DYNAMIC_DISPATCH(gemm)(rounded, pool);
}
}  // namespace detail

/// The general product; checks that the problem is well formed, then dispatches.
inline void gemm(const gemm_problem& g, const thread_pool& pool = serial_pool()) {
  auto check_operand = [](const matrix_operand& op, std::size_t rows, std::size_t cols, const char* name) {
    const std::size_t stored_cols = op.transposed ? rows : cols;
    require<shape_error>(op.stride >= stored_cols, "gemm: ", name, " stride ", op.stride, " is smaller than its ",
                         stored_cols, " stored columns");
    require<argument_error>(op.data != nullptr || rows * cols == 0, "gemm: ", name, " has no data");
  };
  check_operand(g.a, g.m, g.k, "A");
  check_operand(g.b, g.k, g.n, "B");
  require<shape_error>(g.ldc >= g.n, "gemm: C stride ", g.ldc, " is smaller than its ", g.n, " columns");
  require<argument_error>(g.c != nullptr || g.m * g.n == 0, "gemm: C has no data");
  if (g.products == product_precision::bf16) {
    if (g.a.type == dtype::f32 && g.b.type == dtype::f32) {
      if (amx_bf16_usable()) return gemm_bf16_amx(g, pool);
      if (bf16_dot_usable()) return gemm_bf16_dot(g, pool);
    }
    return detail::gemm_bf16_portable(g, pool);
  }
  HWY_DYNAMIC_DISPATCH(gemm)(g, pool);
}

/// C [m x n] (+)= A [m x k] * B for a B packed once (prepacked_matrix) and a row-major f32 A read
/// in place (row stride lda): for the small products repeated against one matrix, such as a batch
/// of RNN states times the recurrent weights at every time step.
inline void gemm_prepacked(std::size_t m, const float* a, std::size_t lda, const prepacked_matrix& b, float* c,
                           std::size_t ldc, bool accumulate, const thread_pool& pool = serial_pool()) {
  const std::size_t k = b.depth(), n = b.columns();
  require<shape_error>(m <= 1 || lda >= k, "gemm_prepacked: A stride ", lda, " is smaller than its ", k, " columns");
  require<shape_error>(m <= 1 || ldc >= n, "gemm_prepacked: C stride ", ldc, " is smaller than its ", n, " columns");
  require<argument_error>((a != nullptr || m * k == 0) && (c != nullptr || m * n == 0), "gemm_prepacked: no data");
  if (b.products() == product_precision::bf16) {
#if LMKIT_HAS_AMX_PATH
    if (const std::uint16_t* packed = b.bf16_data()) {
      const gemm_problem g{m, n, k, {a, dtype::f32, m <= 1 ? k : lda, false}, {}, c, ldc, accumulate, product_precision::bf16};
      return amx_detail::gemm_bf16_prepacked(g, packed, pool, amx_bf16_usable());
    }
#endif
    // B's panels hold bf16 values already; A's rows are rounded into a copy.
    thread_local std::vector<float> rounded;
    rounded.resize(m * k);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t p = 0; p < k; ++p) rounded[i * k + p] = bf16::from_float(a[i * lda + p]).to_float();
    return HWY_DYNAMIC_DISPATCH(gemm_prepacked)(m, n, k, rounded.data(), k, b.data(), c, ldc, accumulate, pool);
  }
  HWY_DYNAMIC_DISPATCH(gemm_prepacked)(m, n, k, a, lda, b.data(), c, ldc, accumulate, pool);
}

/// C [m x n] (+)= A^T B with A stored [k x m] (row stride lda) and B stored [k x n] (ldb), f32: the
/// weight gradient of a block of rows (dW += dY^T X over a few hundred rows). Unlike kernels::gemm
/// it packs A^T with vector moves (gemm's packing of a transposed A copies a few floats per call
/// to memmove) and reads B in place.
inline void gemm_tn(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
                    std::size_t ldb, float* c, std::size_t ldc, bool accumulate, const thread_pool& pool = serial_pool()) {
  require<shape_error>(k <= 1 || (lda >= m && ldb >= n), "gemm_tn: a row stride is smaller than its row");
  require<shape_error>(m <= 1 || ldc >= n, "gemm_tn: C stride ", ldc, " is smaller than its ", n, " columns");
  require<argument_error>((a != nullptr && b != nullptr) || m * n * k == 0, "gemm_tn: no data");
  require<argument_error>(c != nullptr || m * n == 0, "gemm_tn: C has no data");
  HWY_DYNAMIC_DISPATCH(gemm_tn)(m, n, k, a, lda, b, ldb, c, ldc, accumulate, pool);
}

namespace detail {
template <class T, class E>
matrix_operand operand(tensor_view<T, E> v, bool transposed, const char* name) {
  static_assert(E::rank() == 2, "a matrix operand is a rank-2 tensor");
  using value = std::remove_cv_t<T>;
  require<shape_error>(v.stride(1) == 1 || v.extent(1) <= 1, "matmul: ", name, " must have unit column stride");
  // A single stored row has no meaningful row stride; its length is one.
  const std::size_t stride = v.extent(0) <= 1 ? v.extent(1) : v.stride(0);
  return {v.data(), dtype_of<value>, stride, transposed};
}
}  // namespace detail

/// c (+)= a * b with a [m x k], b [k x n], c [m x n]; a and b f32, bf16 or f16.
template <class TA, class EA, class TB, class EB, class EC>
void matmul(tensor_view<TA, EA> a, tensor_view<TB, EB> b, tensor_view<float, EC> c,
            const thread_pool& pool = serial_pool(), bool accumulate = false) {
  require<shape_error>(a.extent(1) == b.extent(0) && c.extent(0) == a.extent(0) && c.extent(1) == b.extent(1),
                       "matmul: [", a.extent(0), " x ", a.extent(1), "] * [", b.extent(0), " x ", b.extent(1),
                       "] does not give [", c.extent(0), " x ", c.extent(1), "]");
  gemm({a.extent(0), b.extent(1), a.extent(1), detail::operand(a, false, "a"), detail::operand(b, false, "b"), c.data(),
        c.stride(0), accumulate},
       pool);
}

/// c (+)= a * b^T with a [m x k], b [n x k] (a weight stored [out, in]), c [m x n].
template <class TA, class EA, class TB, class EB, class EC>
void matmul_nt(tensor_view<TA, EA> a, tensor_view<TB, EB> b, tensor_view<float, EC> c,
               const thread_pool& pool = serial_pool(), bool accumulate = false,
               product_precision products = product_precision::f32) {
  require<shape_error>(a.extent(1) == b.extent(1) && c.extent(0) == a.extent(0) && c.extent(1) == b.extent(0),
                       "matmul_nt: [", a.extent(0), " x ", a.extent(1), "] * [", b.extent(0), " x ", b.extent(1),
                       "]^T does not give [", c.extent(0), " x ", c.extent(1), "]");
  gemm({a.extent(0), b.extent(0), a.extent(1), detail::operand(a, false, "a"), detail::operand(b, true, "b"), c.data(),
        c.stride(0), accumulate, products},
       pool);
}

/// Backward of c = a * b: da += dc * b^T, db += a^T * dc. Either gradient may be skipped (empty).
template <class EA, class EB, class EC, class EDA, class EDB>
void matmul_backward(tensor_view<const float, EA> a, tensor_view<const float, EB> b, tensor_view<const float, EC> dc,
                     tensor_view<float, EDA> da, tensor_view<float, EDB> db, const thread_pool& pool = serial_pool()) {
  const std::size_t m = a.extent(0), k = a.extent(1), n = b.extent(1);
  require<shape_error>(b.extent(0) == k && dc.extent(0) == m && dc.extent(1) == n, "matmul_backward: shapes disagree");
  if (da.data()) {
    require<shape_error>(da.extent(0) == m && da.extent(1) == k, "matmul_backward: da is not [", m, " x ", k, "]");
    gemm({m, k, n, detail::operand(dc, false, "dc"), detail::operand(b, true, "b"), da.data(), da.stride(0), true}, pool);
  }
  if (db.data()) {
    require<shape_error>(db.extent(0) == k && db.extent(1) == n, "matmul_backward: db is not [", k, " x ", n, "]");
    gemm({k, n, m, detail::operand(a, true, "a"), detail::operand(dc, false, "dc"), db.data(), db.stride(0), true}, pool);
  }
}

/// Backward of c = a * b^T (b [n x k]): da += dc * b, db += dc^T * a.
template <class EA, class EB, class EC, class EDA, class EDB>
void matmul_nt_backward(tensor_view<const float, EA> a, tensor_view<const float, EB> b, tensor_view<const float, EC> dc,
                        tensor_view<float, EDA> da, tensor_view<float, EDB> db, const thread_pool& pool = serial_pool()) {
  const std::size_t m = a.extent(0), k = a.extent(1), n = b.extent(0);
  require<shape_error>(b.extent(1) == k && dc.extent(0) == m && dc.extent(1) == n, "matmul_nt_backward: shapes disagree");
  if (da.data()) {
    require<shape_error>(da.extent(0) == m && da.extent(1) == k, "matmul_nt_backward: da is not [", m, " x ", k, "]");
    gemm({m, k, n, detail::operand(dc, false, "dc"), detail::operand(b, false, "b"), da.data(), da.stride(0), true}, pool);
  }
  if (db.data()) {
    require<shape_error>(db.extent(0) == n && db.extent(1) == k, "matmul_nt_backward: db is not [", n, " x ", k, "]");
    gemm({n, k, m, detail::operand(dc, true, "dc"), detail::operand(a, false, "a"), db.data(), db.stride(0), true}, pool);
  }
}

/// y = w * x with w [n x k] stored row-major (a weight [out, in]), x [k], y [n]: one-token decoding.
template <class TW, class EW>
void matvec(tensor_view<TW, EW> w, std::span<const float> x, std::span<float> y, const thread_pool& pool = serial_pool()) {
  detail::same_size(w.extent(1), x.size(), "matvec x");
  detail::same_size(w.extent(0), y.size(), "matvec y");
  gemm({1, w.extent(0), w.extent(1), {x.data(), dtype::f32, x.size(), false}, detail::operand(w, true, "w"), y.data(),
        y.size(), false},
       pool);
}

// ---- quantised weights (GGUF Q8_0 / Q4_0) and weight matrices of any type --------------------

/// x (32 * out.size() floats) to Q8_0 blocks, exactly as ggml's quantize_row_q8_0_ref.
inline void quantize_q8_0(std::span<const float> x, std::span<block_q8_0> out) {
  detail::same_size(x.size(), quant_block_size * out.size(), "quantize_q8_0 (32 floats per block)");
  HWY_DYNAMIC_DISPATCH(quantize_q8_0)(x.data(), out.data(), out.size());
}
/// x (32 * out.size() floats) to Q4_0 blocks, exactly as ggml's quantize_row_q4_0_ref.
inline void quantize_q4_0(std::span<const float> x, std::span<block_q4_0> out) {
  detail::same_size(x.size(), quant_block_size * out.size(), "quantize_q4_0 (32 floats per block)");
  HWY_DYNAMIC_DISPATCH(quantize_q4_0)(x.data(), out.data(), out.size());
}
/// Blocks widened to floats: out[32 b + i] = d_b * q_bi.
inline void dequantize(std::span<const block_q8_0> in, std::span<float> out) {
  detail::same_size(out.size(), quant_block_size * in.size(), "dequantize q8_0 (32 floats per block)");
  HWY_DYNAMIC_DISPATCH(dequantize_q8_0)(in.data(), out.data(), in.size());
}
inline void dequantize(std::span<const block_q4_0> in, std::span<float> out) {
  detail::same_size(out.size(), quant_block_size * in.size(), "dequantize q4_0 (32 floats per block)");
  HWY_DYNAMIC_DISPATCH(dequantize_q4_0)(in.data(), out.data(), in.size());
}

namespace detail {
inline void check_weight_matrix(const weight_matrix& w, const char* what) {
  require<argument_error>(w.data != nullptr || w.rows * w.cols == 0, what, ": the ", name_of(w.type), " weight matrix [",
                          w.rows, " x ", w.cols, "] has no data");
  require<shape_error>(!is_block_type(w.type) || w.cols % quant_block_size == 0, what, ": ", name_of(w.type),
                       " rows hold whole blocks of 32 weights, not ", w.cols);
}
}  // namespace detail

/// y [m x w.rows] (row stride ldy) = x [m x w.cols] (row stride ldx) * w^T, for every weight_type.
/// f32 / f16 / bf16 go to gemm (w as the transposed B operand). Q8_0 / Q4_0: each row of x is
/// quantised to Q8_0 blocks (as llama.cpp does for these weight types), then integer dot products
/// per block, scaled by d_w * d_x and summed in f32. The result does not depend on the thread count.
inline void matmul_weights(const float* x, std::size_t m, std::size_t ldx, const weight_matrix& w, float* y,
                           std::size_t ldy, const thread_pool& pool = serial_pool()) {
  detail::check_weight_matrix(w, "matmul_weights");
  require<shape_error>(m <= 1 || ldx >= w.cols, "matmul_weights: x row stride ", ldx, " is smaller than its ", w.cols,
                       " columns");
  require<shape_error>(m <= 1 || ldy >= w.rows, "matmul_weights: y row stride ", ldy, " is smaller than its ", w.rows,
                       " columns");
  require<argument_error>(x != nullptr || m * w.cols == 0, "matmul_weights: x has no data");
  require<argument_error>(y != nullptr || m * w.rows == 0, "matmul_weights: y has no data");
  // A single row has no meaningful stride.
  if (m <= 1) {
    ldx = std::max(ldx, w.cols);
    ldy = std::max(ldy, w.rows);
  }
  if (is_block_type(w.type)) {
    HWY_DYNAMIC_DISPATCH(matmul_quant)(x, m, ldx, w.type, w.data, w.rows, w.cols, y, ldy, pool);
    return;
  }
  const dtype type = w.type == weight_type::f32 ? dtype::f32 : w.type == weight_type::f16 ? dtype::f16 : dtype::bf16;
  if (m == 1 || w.rows == 0 || w.cols == 0) {  // decoding: gemm's matrix-vector path
    gemm({m, w.rows, w.cols, {x, dtype::f32, ldx, false}, {w.data, type, w.cols, true}, y, ldy, false}, pool);
    return;
  }
  // Several rows (a prompt): the weights are read in place, not packed (see gemm_nt-inl.hpp).
  if (m > 0) HWY_DYNAMIC_DISPATCH(gemm_nt_direct)(x, ldx, w.data, type, w.cols, y, ldy, m, w.rows, w.cols, pool);
}

/// One row of w (any type) widened to f32: the embedding lookup of a quantised token table.
inline void dequantize_row(const weight_matrix& w, std::size_t row, std::span<float> out) {
  detail::check_weight_matrix(w, "dequantize_row");
  require<argument_error>(row < w.rows, "dequantize_row: row ", row, " of a matrix of ", w.rows, " rows");
  detail::same_size(out.size(), w.cols, "dequantize_row output");
  const auto* base = static_cast<const unsigned char*>(w.data) + row * row_bytes(w.type, w.cols);
  switch (w.type) {
    case weight_type::f32: std::memcpy(out.data(), base, w.cols * sizeof(float)); break;
    case weight_type::f16:
      HWY_DYNAMIC_DISPATCH(f16_to_f32)(reinterpret_cast<const std::uint16_t*>(base), out.data(), w.cols);
      break;
    case weight_type::bf16:
      HWY_DYNAMIC_DISPATCH(bf16_to_f32)(reinterpret_cast<const std::uint16_t*>(base), out.data(), w.cols);
      break;
    case weight_type::q8_0: HWY_DYNAMIC_DISPATCH(dequantize_q8_0)(base, out.data(), w.cols / quant_block_size); break;
    case weight_type::q4_0: HWY_DYNAMIC_DISPATCH(dequantize_q4_0)(base, out.data(), w.cols / quant_block_size); break;
  }
}

}  // namespace lmkit::kernels
