// Element-wise kernels: add, mul, scale, axpy. Per-target code, re-included once per Highway target
// by kernels.hpp (see docs/kernels.md); do not include it directly.
#if defined(LMKIT_KERNELS_ELEMENTWISE_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_ELEMENTWISE_INL_HPP_
#undef LMKIT_KERNELS_ELEMENTWISE_INL_HPP_
#else
#define LMKIT_KERNELS_ELEMENTWISE_INL_HPP_
#endif

#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Applies `op(d, inputs...)` lane-wise over n elements; the last partial vector is handled with a
/// masked load and a blended store, so every element takes the same instruction path.
template <class Op>
HWY_INLINE void map_unary(const float* x, float* out, std::size_t n, const Op& op) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(op(d, hn::LoadU(d, x + i)), d, out + i);
  if (i < n) {
    const std::size_t count = std::min(lanes, n - i);
    store_tail(op(d, load_tail(d, x + i, count)), d, out + i, count);
  }
}

template <class Op>
HWY_INLINE void map_binary(const float* a, const float* b, float* out, std::size_t n, const Op& op) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(op(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  if (i < n) {
    const std::size_t count = std::min(lanes, n - i);
    store_tail(op(d, load_tail(d, a + i, count), load_tail(d, b + i, count)), d, out + i, count);
  }
}

template <class Op>
HWY_INLINE void map_ternary(const float* a, const float* b, const float* c, float* out, std::size_t n, const Op& op) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(op(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, out + i);
  if (i < n) {
    const std::size_t m = std::min(lanes, n - i);
    store_tail(op(d, load_tail(d, a + i, m), load_tail(d, b + i, m), load_tail(d, c + i, m)), d, out + i, m);
  }
}

// out = a + b (out may alias a or b)
inline void add(const float* a, const float* b, float* out, std::size_t n) {
  map_binary(a, b, out, n, [](auto, auto x, auto y) HWY_ATTR { return hn::Add(x, y); });
}

// out = a * b
inline void mul(const float* a, const float* b, float* out, std::size_t n) {
  map_binary(a, b, out, n, [](auto, auto x, auto y) HWY_ATTR { return hn::Mul(x, y); });
}

// out = s * x
inline void scale(const float* x, float s, float* out, std::size_t n) {
  map_unary(x, out, n, [s](auto d, auto v) HWY_ATTR { return hn::Mul(v, hn::Set(d, s)); });
}

// y += alpha * x
inline void axpy(float alpha, const float* x, float* y, std::size_t n) {
  map_binary(x, y, y, n, [alpha](auto d, auto xv, auto yv) HWY_ATTR { return hn::MulAdd(hn::Set(d, alpha), xv, yv); });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
