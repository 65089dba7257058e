// Inverted dropout: while training, each activation is zeroed with probability p and the rest are
// scaled by 1 / (1 - p); otherwise the identity. The mask is drawn from the run context's noise
// seed, stream = its pass number, at positions set apart by the layer's `salt` (each dropout layer
// of a model has its own): the same masks on any thread count, and after a resume.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

template <std::size_t Width = dynamic>
class dropout {
 public:
  static constexpr std::size_t in_width = Width;
  static constexpr std::size_t out_width = Width;

  explicit dropout(std::size_t width, float p, std::uint64_t salt = 0) : width_(width), p_(p), salt_(salt) {
    detail::checked_width(Width, width, "dropout", "width");
    require<argument_error>(p >= 0.0f && p < 1.0f, "dropout: probability must be in [0, 1), got ", p);
  }

  std::size_t in_features() const { return width_; }
  std::size_t out_features() const { return width_; }
  float probability() const { return p_; }

  void reserve(activation_arena& arena, batch_shape shape) {
    rows_ = shape.rows();
    if (p_ > 0.0f) {
      mask_ = arena.take(rows_ * width_);
      y_ = arena.take(rows_ * width_);
      dx_ = arena.take(rows_ * width_);
    }
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    active_ = ctx.training && p_ > 0.0f;
    if (!active_) return x;
    const float keep_scale = 1.0f / (1.0f - p_);
    const philox stream(ctx.noise, ctx.pass);
    const std::uint64_t first_block = salt_ << 38;  // 2^40 values per layer and pass: more than any batch
    ctx.pool->for_each_chunk(rows_ * width_, 4096, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; i += 4) {  // chunks start at multiples of 4
        const auto bits = stream.block_at(first_block + i / 4);
        for (std::size_t j = 0; j < 4 && i + j < end; ++j)
          mask_[i + j] = static_cast<float>(bits[j] >> 8) * 0x1p-24f < p_ ? 0.0f : keep_scale;
      }
    });
    kernels::mul(x.span(), mask_, y_);
    return as_matrix(std::span<const float>(y_), rows_, width_);
  }

  const_matrix backward(const_matrix dy, const run_context&) {
    if (!active_) return dy;
    kernels::mul(dy.span(), mask_, dx_);
    return as_matrix(std::span<const float>(dx_), rows_, width_);
  }

  template <class Visitor>
  void visit_parameters(Visitor&&, std::string_view) {}

 private:
  std::size_t width_;
  float p_;
  std::uint64_t salt_;
  bool active_ = false;
  std::size_t rows_ = 0;
  std::span<float> mask_, y_, dx_;
};

}  // namespace lmkit::nn
