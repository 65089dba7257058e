// Optimizer updates: one pass over a parameter, its gradient and its moment buffers. Per-target
// code, re-included once per Highway target by kernels.hpp; do not include it directly.
#if defined(LMKIT_KERNELS_OPTIMIZER_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_OPTIMIZER_INL_HPP_
#undef LMKIT_KERNELS_OPTIMIZER_INL_HPP_
#else
#define LMKIT_KERNELS_OPTIMIZER_INL_HPP_
#endif

#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/kernels/optimizer_coefficients.hpp"
#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// g' = g + l2 w;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
// w = w shrink - step_size m / (sqrt(v) rsqrt_correction2 + eps)
inline void adam_update(float* w, const float* g, float* m, float* v, std::size_t n, const adam_coefficients& c) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto b1 = hn::Set(d, c.beta1), one_minus_b1 = hn::Set(d, 1.0f - c.beta1);
  const auto b2 = hn::Set(d, c.beta2), one_minus_b2 = hn::Set(d, 1.0f - c.beta2);
  const auto l2 = hn::Set(d, c.l2), shrink = hn::Set(d, c.shrink), step = hn::Set(d, c.step_size);
  const auto rc2 = hn::Set(d, c.rsqrt_correction2), eps = hn::Set(d, c.eps);
  auto update = [&](auto wv, auto gv, auto mv, auto vv, auto& w_out, auto& m_out, auto& v_out) HWY_ATTR {
    const auto grad = hn::MulAdd(l2, wv, gv);
    m_out = hn::MulAdd(b1, mv, hn::Mul(one_minus_b1, grad));
    v_out = hn::MulAdd(b2, vv, hn::Mul(one_minus_b2, hn::Mul(grad, grad)));
    const auto denom = hn::MulAdd(hn::Sqrt(v_out), rc2, eps);
    w_out = hn::NegMulAdd(step, hn::Div(m_out, denom), hn::Mul(wv, shrink));
  };
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::Vec<decltype(d)> wn, mn, vn;
    update(hn::LoadU(d, w + i), hn::LoadU(d, g + i), hn::LoadU(d, m + i), hn::LoadU(d, v + i), wn, mn, vn);
    hn::StoreU(wn, d, w + i);
    hn::StoreU(mn, d, m + i);
    hn::StoreU(vn, d, v + i);
  }
  if (i < n) {
    const std::size_t k = n - i;
    hn::Vec<decltype(d)> wn, mn, vn;
    update(load_tail(d, w + i, k), load_tail(d, g + i, k), load_tail(d, m + i, k), load_tail(d, v + i, k), wn, mn, vn);
    store_tail(wn, d, w + i, k);
    store_tail(mn, d, m + i, k);
    store_tail(vn, d, v + i, k);
  }
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
