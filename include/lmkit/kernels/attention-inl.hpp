// Attention of one query over the keys and values cached so far: scores = q . K[j] * scale,
// softmax, then the weighted sum of the values. One call per (token, head) keeps the loops over
// positions inside the target's code (a dispatched call per key cost more than the arithmetic of a
// 16- or 64-wide head). Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_ATTENTION_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_ATTENTION_INL_HPP_
#undef LMKIT_KERNELS_ATTENTION_INL_HPP_
#else
#define LMKIT_KERNELS_ATTENTION_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/kernels/elementwise-inl.hpp"
#include "lmkit/kernels/softmax-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {

/// out [head_dim] = sum_j softmax_j(scale * q . keys[j]) values[j] for j < n, where row j of keys
/// (values) starts at keys + j * stride; `scores` [n] is scratch (it holds the weights on return).
inline void attend_query(const float* q, const float* keys, const float* values, std::size_t stride, std::size_t n,
                         std::size_t head_dim, float scale, float* scores, float* out) {
  for (std::size_t j = 0; j < n; ++j) scores[j] = dot(q, keys + j * stride, head_dim) * scale;
  softmax(scores, scores, n);
  std::fill(out, out + head_dim, 0.0f);
  for (std::size_t j = 0; j < n; ++j) axpy(scores[j], values + j * stride, out, head_dim);
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
