// Rotary position embedding, in place, for `heads` vectors of `head_dim` at one position.
// Two pairings of the dimensions are in use: adjacent pairs (x[2i], x[2i+1]) as in llama2.c and
// GGUF files, and half rotation (x[i], x[i + head_dim/2]) as in Hugging Face checkpoints.
// Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_ROPE_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_ROPE_INL_HPP_
#undef LMKIT_KERNELS_ROPE_INL_HPP_
#else
#define LMKIT_KERNELS_ROPE_INL_HPP_
#endif

#include <cstddef>
#include <memory>

#include <hwy/highway.h>

#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Half rotation: for i < h = head_dim/2, (x[i], x[i+h]) <- (x[i] c - x[i+h] s, x[i] s + x[i+h] c),
// with c = cos[i], s = sin[i] (s negated when `inverse`, which is also the backward).
inline void rope_half(float* x, std::size_t head_dim, std::size_t heads, const float* cos, const float* sin, bool inverse) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t half = head_dim / 2;
  const auto sign = hn::Set(d, inverse ? -1.0f : 1.0f);
  for (std::size_t h = 0; h < heads; ++h) {
    float* lo = x + h * head_dim;
    float* hi = lo + half;
    for (std::size_t i = 0; i < half; i += lanes) {
      const std::size_t m = std::min(lanes, half - i);
      const auto c = load_tail(d, cos + i, m);
      const auto s = hn::Mul(sign, load_tail(d, sin + i, m));
      const auto a = load_tail(d, lo + i, m), b = load_tail(d, hi + i, m);
      store_tail(hn::NegMulAdd(b, s, hn::Mul(a, c)), d, lo + i, m);
      store_tail(hn::MulAdd(a, s, hn::Mul(b, c)), d, hi + i, m);
    }
  }
}

// Adjacent pairs: (x[2i], x[2i+1]) <- (x[2i] c - x[2i+1] s, x[2i] s + x[2i+1] c).
inline void rope_adjacent(float* x, std::size_t head_dim, std::size_t heads, const float* cos, const float* sin,
                          bool inverse) {
  const float sign = inverse ? -1.0f : 1.0f;
  const std::size_t half = head_dim / 2;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  // Lane j of a vector starting at an even index holds x[2i + (j & 1)]; multiplying by c on every
  // lane and adding the pair-swapped vector times (-s, +s) applies the 2x2 rotation to each pair.
  // The cos/sin tables are spread to full width once per call and reused for every head.
  constexpr std::size_t stack_dims = 512;
  HWY_ALIGN float cos_full_stack[stack_dims], sin_signed_stack[stack_dims];
  std::unique_ptr<float[]> heap;
  float *cos_full = cos_full_stack, *sin_signed = sin_signed_stack;
  if (2 * half > stack_dims) {
    heap.reset(new float[4 * half]);
    cos_full = heap.get();
    sin_signed = heap.get() + 2 * half;
  }
  for (std::size_t i = 0; i < half; ++i) {
    cos_full[2 * i] = cos_full[2 * i + 1] = cos[i];
    sin_signed[2 * i] = -sign * sin[i];
    sin_signed[2 * i + 1] = sign * sin[i];
  }
  const std::size_t n = 2 * half;
  for (std::size_t h = 0; h < heads; ++h) {
    float* row = x + h * head_dim;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
      const auto v = hn::LoadU(d, row + i);
      hn::StoreU(hn::MulAdd(hn::Reverse2(d, v), hn::LoadU(d, sin_signed + i), hn::Mul(v, hn::LoadU(d, cos_full + i))), d,
                 row + i);
    }
    for (; i < n; i += 2) {  // lanes is even, so the tail holds whole pairs
      const float a = row[i], b = row[i + 1], c = cos_full[i], s = sin_signed[i + 1];
      row[i] = a * c - b * s;
      row[i + 1] = a * s + b * c;
    }
  }
#else
  for (std::size_t h = 0; h < heads; ++h) {
    float* row = x + h * head_dim;
    for (std::size_t i = 0; i < half; ++i) {
      const float a = row[2 * i], b = row[2 * i + 1], c = cos[i], s = sign * sin[i];
      row[2 * i] = a * c - b * s;
      row[2 * i + 1] = a * s + b * c;
    }
  }
#endif
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
