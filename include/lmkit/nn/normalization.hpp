// Layer normalisation over each row (GPT-2, BERT): (x - mean) / sqrt(var + eps) * gain (+ bias).
// RMS normalisation (Llama): x / sqrt(mean(x^2) + eps) * gain. Both keep (mean, 1/std) per row
// for the backward. Like linear, a norm may be frozen: its gain (and bias) held elsewhere, `infer` only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

enum class norm_kind { layer, rms };

template <norm_kind Kind, std::size_t Width = dynamic>
class normalization {
 public:
  static constexpr std::size_t in_width = Width;
  static constexpr std::size_t out_width = Width;

  normalization() requires(Width != dynamic) : normalization(Width) {}
  explicit normalization(std::size_t width, bias b = bias::no, float eps = 1e-5f)
      : width_(detail::checked_width(Width, width, "normalization", "width")), gain_({width}, decay::no), eps_(eps) {
    gain_.fill(1.0f);
    if (b == bias::yes) {
      require<argument_error>(Kind == norm_kind::layer, "rms_norm has no bias");
      bias_ = parameter({width}, decay::no);
    }
  }

  /// A frozen norm over `gain` [width] (and `bias`, layer norm only) owned elsewhere.
  normalization(std::span<const float> gain, std::span<const float> bias, float eps)
      : width_(detail::checked_width(Width, gain.size(), "normalization", "width")),
        eps_(eps),
        frozen_gain_(gain),
        frozen_bias_(bias),
        is_frozen_(true) {
    require<argument_error>(!gain.empty(), "normalization: a frozen norm needs its gain");
    require<shape_error>(bias.empty() || (Kind == norm_kind::layer && bias.size() == width_),
                         "normalization: a bias of ", bias.size(), " values for a ",
                         Kind == norm_kind::layer ? "layer" : "rms", " norm of width ", width_);
  }

  std::size_t in_features() const { return width_; }
  std::size_t out_features() const { return width_; }
  float epsilon() const { return eps_; }
  bool frozen() const { return is_frozen_; }
  std::span<const float> gain_values() const { return frozen() ? frozen_gain_ : gain_.value(); }
  std::span<const float> bias_values() const { return frozen() ? frozen_bias_ : bias_.value(); }

  /// y [rows, width] = norm(x [rows, width]) for inference: nothing kept.
  void infer(const float* x, std::size_t rows, float* y) const {
    const std::span<const float> gain = gain_values(), b = bias_values();
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const float> in(x + r * width_, width_);
      const std::span<float> out(y + r * width_, width_);
      if constexpr (Kind == norm_kind::layer) kernels::layer_norm(in, gain, b, out, eps_);
      else kernels::rms_norm(in, gain, out, eps_);
    }
  }
  parameter& weight() { return gain_; }

  void reserve(activation_arena& arena, batch_shape shape) {
    rows_ = shape.rows();
    y_ = arena.take(rows_ * width_);
    dx_ = arena.take(rows_ * width_);
    stats_ = arena.take(rows_ * 2);
    const std::size_t tasks = (rows_ + detail::rows_per_task - 1) / detail::rows_per_task;
    partial_grads_ = arena.take(tasks * 2 * width_);
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    require<argument_error>(!frozen(), "normalization: this norm is frozen (held by a model file): it runs infer");
    require<shape_error>(x.extent(0) == rows_ && x.extent(1) == width_, "normalization: input is [", x.extent(0),
                         " x ", x.extent(1), "], expected [", rows_, " x ", width_, "]");
    x_ = x;
    const matrix y = as_matrix(y_, rows_, width_);
    ctx.pool->for_each_chunk(rows_, detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const kernels::norm_stats s = Kind == norm_kind::layer
                                          ? kernels::layer_norm(x[r].span(), gain_.value(), bias_.value(), y[r].span(), eps_)
                                          : kernels::rms_norm(x[r].span(), gain_.value(), y[r].span(), eps_);
        stats_[2 * r] = s.mean;
        stats_[2 * r + 1] = s.rstd;
      }
    });
    return y;
  }

  /// Each task sums its rows' parameter gradients into its own slot; the slots are then added in
  /// task order, so the sums are the same for any thread count.
  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const matrix dx = as_matrix(dx_, rows_, width_);
    ctx.pool->for_each_chunk(rows_, detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      // The kernels add: each task zeroes its rows and its own slot first.
      std::fill(dx_.begin() + begin * width_, dx_.begin() + end * width_, 0.0f);
      float* dgain = partial_grads_.data() + begin / detail::rows_per_task * 2 * width_;
      std::fill(dgain, dgain + 2 * width_, 0.0f);
      std::span<float> dgain_span(dgain, width_), dbias_span(dgain + width_, has_bias() ? width_ : 0);
      for (std::size_t r = begin; r < end; ++r) {
        const kernels::norm_stats s{stats_[2 * r], stats_[2 * r + 1]};
        if constexpr (Kind == norm_kind::layer)
          kernels::layer_norm_backward(x_[r].span(), gain_.value(), s, dy[r].span(), dx[r].span(), dgain_span, dbias_span);
        else
          kernels::rms_norm_backward(x_[r].span(), gain_.value(), s, dy[r].span(), dx[r].span(), dgain_span);
      }
    });
    const std::size_t tasks = (rows_ + detail::rows_per_task - 1) / detail::rows_per_task;
    for (std::size_t t = 0; t < tasks; ++t) {
      const std::span<const float> slot(partial_grads_.data() + t * 2 * width_, 2 * width_);
      kernels::add(slot.first(width_), gain_.grad(), gain_.grad());
      if (has_bias()) kernels::add(slot.subspan(width_, width_), bias_.grad(), bias_.grad());
    }
    return dx;
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    if (frozen()) return;
    visit(join_name(prefix, "weight"), gain_);
    if (has_bias()) visit(join_name(prefix, "bias"), bias_);
  }

 private:
  bool has_bias() const { return bias_.size() != 0; }

  std::size_t width_;
  parameter gain_, bias_;
  float eps_;
  std::span<const float> frozen_gain_, frozen_bias_;
  bool is_frozen_ = false;
  std::size_t rows_ = 0;
  std::span<float> y_, dx_, stats_, partial_grads_;
  const_matrix x_;
};

template <std::size_t Width = dynamic>
using layer_norm = normalization<norm_kind::layer, Width>;
template <std::size_t Width = dynamic>
using rms_norm = normalization<norm_kind::rms, Width>;

}  // namespace lmkit::nn
