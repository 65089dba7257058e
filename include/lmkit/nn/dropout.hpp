// Inverted dropout: while training, each activation is zeroed with probability p and the rest are
// scaled by 1 / (1 - p); otherwise the identity. The mask is drawn from the run context's noise
// seed, stream = its pass number, at positions set apart by the layer's `salt` (each dropout layer
// of a model has its own; dropout_mask, which attention's dropout uses too): the same masks on any
// thread count, and after a resume.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/core/float_text.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

/// mask[i] = 0 with probability `rate`, else 1 / (1 - rate), for the values first .. first + n - 1
/// of the mask salted `salt` in this pass: value (salt << 40) + first + i of Philox stream
/// (ctx.noise, ctx.pass), 2^40 values per salt and pass (more than any batch). Four per Philox block.
inline void dropout_mask(const run_context& ctx, std::uint64_t salt, std::size_t first, float rate, std::span<float> mask) {
  const philox stream(ctx.noise, ctx.pass);
  const float keep_scale = 1.0f / (1.0f - rate);
  std::array<std::uint32_t, 4> bits{};
  for (std::size_t i = 0; i < mask.size(); ++i) {
    const std::uint64_t at = (salt << 40) + first + i;
    if (i == 0 || at % 4 == 0) bits = stream.block_at(at / 4);
    mask[i] = static_cast<float>(bits[at % 4] >> 8) * 0x1p-24f < rate ? 0.0f : keep_scale;
  }
}

/// A dropout probability written as text (a checkpoint's metadata): a number in [0, 1), nothing
/// after it; nullopt otherwise.
inline std::optional<float> parse_dropout_probability(std::string_view text) {
  const std::optional<float> p = parse_float(text);
  if (!p || !(*p >= 0.0f && *p < 1.0f)) return std::nullopt;
  return p;
}

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
    ctx.pool->for_each_chunk(rows_ * width_, 4096, [&](std::size_t begin, std::size_t end) {
      dropout_mask(ctx, salt_, begin, p_, std::span<float>(mask_).subspan(begin, end - begin));
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
