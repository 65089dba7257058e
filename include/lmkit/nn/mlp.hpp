// The transformer's feed-forward part, two forms:
//   mlp:        c_proj(act(c_fc(x)))                      GPT-2, BERT (act = GELU)
//   swiglu_mlp: down_proj(silu(gate_proj(x)) * up_proj(x))   Llama (Shazeer 2020)
// Built of linear layers, so either trainable or frozen over a model file's weights (`infer` only).
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"
#include "lmkit/nn/linear.hpp"

namespace lmkit::nn {

enum class activation { gelu_erf, gelu_tanh, silu };

namespace detail {
inline void activate(activation a, std::span<const float> x, std::span<float> y) {
  switch (a) {
    case activation::gelu_erf: kernels::gelu_erf(x, y); break;
    case activation::gelu_tanh: kernels::gelu_tanh(x, y); break;
    case activation::silu: kernels::silu(x, y); break;
  }
}
/// dx = dy f'(x) (written, not added).
inline void activate_backward(activation a, std::span<const float> x, std::span<const float> dy, std::span<float> dx) {
  switch (a) {
    case activation::gelu_erf: kernels::gelu_erf_backward(x, dy, dx, false); break;
    case activation::gelu_tanh: kernels::gelu_tanh_backward(x, dy, dx, false); break;
    case activation::silu: kernels::silu_backward(x, dy, dx, false); break;
  }
}
/// Runs body(span) over the rows of an activation buffer in fixed chunks.
template <class Body>
void for_each_row_chunk(const run_context& ctx, std::size_t rows, std::size_t width, Body&& body) {
  ctx.pool->for_each_chunk(rows, rows_per_task, [&](std::size_t begin, std::size_t end) { body(begin * width, (end - begin) * width); });
}
}  // namespace detail

template <std::size_t Width = dynamic, std::size_t Hidden = dynamic>
class mlp {
 public:
  static constexpr std::size_t in_width = Width;
  static constexpr std::size_t out_width = Width;

  mlp() requires(Width != dynamic && Hidden != dynamic) : mlp(Width, Hidden) {}
  mlp(std::size_t width, std::size_t hidden, activation act = activation::gelu_erf, bias b = bias::no)
      : c_fc_(width, hidden, b), c_proj_(hidden, width, b), act_(act) {
    detail::checked_width(Width, width, "mlp", "width");
    detail::checked_width(Hidden, hidden, "mlp", "hidden width");
  }
  /// From its two layers (frozen ones: a pretrained model's).
  mlp(linear<> c_fc, linear<> c_proj, activation act) : c_fc_(std::move(c_fc)), c_proj_(std::move(c_proj)), act_(act) {
    detail::checked_width(Width, c_fc_.in_features(), "mlp", "width");
    detail::checked_width(Hidden, c_fc_.out_features(), "mlp", "hidden width");
    require<shape_error>(c_proj_.in_features() == c_fc_.out_features() && c_proj_.out_features() == c_fc_.in_features(),
                         "mlp: c_fc is [", c_fc_.out_features(), " x ", c_fc_.in_features(), "] but c_proj is [",
                         c_proj_.out_features(), " x ", c_proj_.in_features(), "]");
  }

  std::size_t in_features() const { return c_fc_.in_features(); }
  std::size_t out_features() const { return c_proj_.out_features(); }
  linear<>& up() { return c_fc_; }
  linear<>& down() { return c_proj_; }

  /// Floats of scratch that `infer` needs for `rows` rows.
  std::size_t infer_scratch(std::size_t rows) const { return rows * c_fc_.out_features(); }
  /// y [rows, width] = the block's function of x [rows, width], for inference (y may not alias x).
  void infer(const float* x, std::size_t rows, float* y, std::span<float> scratch, const thread_pool& pool) const {
    const std::span<float> h = scratch.first(infer_scratch(rows));
    c_fc_.infer(x, rows, h.data(), pool);
    detail::activate(act_, h, h);
    c_proj_.infer(h.data(), rows, y, pool);
  }

  void reserve(activation_arena& arena, batch_shape shape) {
    c_fc_.reserve(arena, shape);
    c_proj_.reserve(arena, shape);
    rows_ = shape.rows();
    h_ = arena.take(rows_ * c_fc_.out_features());
    dh_ = arena.take(rows_ * c_fc_.out_features());
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    pre_ = c_fc_.forward(x, ctx);
    const std::size_t hidden = c_fc_.out_features();
    detail::for_each_row_chunk(ctx, rows_, hidden, [&](std::size_t at, std::size_t n) {
      detail::activate(act_, std::span<const float>(pre_.data() + at, n), h_.subspan(at, n));
    });
    return c_proj_.forward(as_matrix(std::span<const float>(h_), rows_, hidden), ctx);
  }

  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const const_matrix dh = c_proj_.backward(dy, ctx);
    const std::size_t hidden = c_fc_.out_features();
    detail::for_each_row_chunk(ctx, rows_, hidden, [&](std::size_t at, std::size_t n) {
      detail::activate_backward(act_, std::span<const float>(pre_.data() + at, n), std::span<const float>(dh.data() + at, n),
                                dh_.subspan(at, n));
    });
    return c_fc_.backward(as_matrix(std::span<const float>(dh_), rows_, hidden), ctx);
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    c_fc_.visit_parameters(visit, join_name(prefix, "c_fc"));
    c_proj_.visit_parameters(visit, join_name(prefix, "c_proj"));
  }

 private:
  linear<> c_fc_, c_proj_;
  activation act_;
  std::size_t rows_ = 0;
  const_matrix pre_;
  std::span<float> h_, dh_;
};

template <std::size_t Width = dynamic, std::size_t Hidden = dynamic>
class swiglu_mlp {
 public:
  static constexpr std::size_t in_width = Width;
  static constexpr std::size_t out_width = Width;

  swiglu_mlp() requires(Width != dynamic && Hidden != dynamic) : swiglu_mlp(Width, Hidden) {}
  swiglu_mlp(std::size_t width, std::size_t hidden)
      : gate_(width, hidden), up_(width, hidden), down_(hidden, width) {
    detail::checked_width(Width, width, "swiglu_mlp", "width");
    detail::checked_width(Hidden, hidden, "swiglu_mlp", "hidden width");
  }
  /// From its three layers (frozen ones: a pretrained model's).
  swiglu_mlp(linear<> gate, linear<> up, linear<> down) : gate_(std::move(gate)), up_(std::move(up)), down_(std::move(down)) {
    detail::checked_width(Width, gate_.in_features(), "swiglu_mlp", "width");
    detail::checked_width(Hidden, gate_.out_features(), "swiglu_mlp", "hidden width");
    require<shape_error>(up_.in_features() == gate_.in_features() && up_.out_features() == gate_.out_features() &&
                             down_.in_features() == gate_.out_features() && down_.out_features() == gate_.in_features(),
                         "swiglu_mlp: gate [", gate_.out_features(), " x ", gate_.in_features(), "], up [",
                         up_.out_features(), " x ", up_.in_features(), "] and down [", down_.out_features(), " x ",
                         down_.in_features(), "] do not fit together");
  }

  std::size_t in_features() const { return gate_.in_features(); }
  std::size_t out_features() const { return down_.out_features(); }
  linear<>& gate_proj() { return gate_; }
  linear<>& up_proj() { return up_; }
  linear<>& down_proj() { return down_; }

  /// Floats of scratch that `infer` needs for `rows` rows.
  std::size_t infer_scratch(std::size_t rows) const { return 2 * rows * gate_.out_features(); }
  /// y [rows, width] = the block's function of x [rows, width], for inference (y may not alias x).
  void infer(const float* x, std::size_t rows, float* y, std::span<float> scratch, const thread_pool& pool) const {
    const std::size_t n = rows * gate_.out_features();
    const std::span<float> gate = scratch.first(n), up = scratch.subspan(n, n);
    gate_.infer(x, rows, gate.data(), pool);
    up_.infer(x, rows, up.data(), pool);
    kernels::silu(gate, gate);
    kernels::mul(gate, up, up);
    down_.infer(up.data(), rows, y, pool);
  }

  void reserve(activation_arena& arena, batch_shape shape) {
    gate_.reserve(arena, shape);
    up_.reserve(arena, shape);
    down_.reserve(arena, shape);
    rows_ = shape.rows();
    const std::size_t n = rows_ * gate_.out_features();
    silu_ = arena.take(n);
    h_ = arena.take(n);
    dgate_ = arena.take(n);
    dup_ = arena.take(n);
    dsum_ = arena.take(rows_ * gate_.in_features());
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    gate_out_ = gate_.forward(x, ctx);
    up_out_ = up_.forward(x, ctx);
    const std::size_t hidden = gate_.out_features();
    detail::for_each_row_chunk(ctx, rows_, hidden, [&](std::size_t at, std::size_t n) {
      kernels::silu(std::span<const float>(gate_out_.data() + at, n), silu_.subspan(at, n));
      kernels::mul(silu_.subspan(at, n), std::span<const float>(up_out_.data() + at, n), h_.subspan(at, n));
    });
    return down_.forward(as_matrix(std::span<const float>(h_), rows_, hidden), ctx);
  }

  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const const_matrix dh = down_.backward(dy, ctx);
    const std::size_t hidden = gate_.out_features();
    detail::for_each_row_chunk(ctx, rows_, hidden, [&](std::size_t at, std::size_t n) {
      const std::span<const float> dh_part(dh.data() + at, n);
      // d up = dh * silu(gate);  d silu = dh * up, then through silu.
      kernels::mul(dh_part, silu_.subspan(at, n), dup_.subspan(at, n));
      kernels::mul(dh_part, std::span<const float>(up_out_.data() + at, n), h_.subspan(at, n));  // h is free now
      kernels::silu_backward(std::span<const float>(gate_out_.data() + at, n), h_.subspan(at, n), dgate_.subspan(at, n),
                             false);
    });
    const const_matrix dx_gate = gate_.backward(as_matrix(std::span<const float>(dgate_), rows_, hidden), ctx);
    const const_matrix dx_up = up_.backward(as_matrix(std::span<const float>(dup_), rows_, hidden), ctx);
    kernels::add(dx_gate.span(), dx_up.span(), dsum_);
    return as_matrix(std::span<const float>(dsum_), rows_, gate_.in_features());
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    gate_.visit_parameters(visit, join_name(prefix, "gate_proj"));
    up_.visit_parameters(visit, join_name(prefix, "up_proj"));
    down_.visit_parameters(visit, join_name(prefix, "down_proj"));
  }

 private:
  linear<> gate_, up_, down_;
  std::size_t rows_ = 0;
  const_matrix gate_out_, up_out_;
  std::span<float> silu_, h_, dgate_, dup_, dsum_;
};

}  // namespace lmkit::nn
