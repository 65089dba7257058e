// Layer norm and RMS norm over one row, forward and backward (the llm.c formulation: forward keeps
// the row's mean and 1/stddev so backward need not recompute them). Per-target code, re-included once
// per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_NORM_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_NORM_INL_HPP_
#undef LMKIT_KERNELS_NORM_INL_HPP_
#else
#define LMKIT_KERNELS_NORM_INL_HPP_
#endif

#include <cmath>
#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/kernels/elementwise-inl.hpp"
#include "lmkit/kernels/softmax-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Sum of (x[i] - center)^2.
inline float sum_squared_deviation(const float* x, float center, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto c = hn::Set(d, center);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto a = hn::Sub(hn::LoadU(d, x + i), c), b = hn::Sub(hn::LoadU(d, x + i + lanes), c);
    s0 = hn::MulAdd(a, a, s0);
    s1 = hn::MulAdd(b, b, s1);
  }
  for (; i + lanes <= n; i += lanes) {
    const auto a = hn::Sub(hn::LoadU(d, x + i), c);
    s0 = hn::MulAdd(a, a, s0);
  }
  if (i < n) {
    const std::size_t m = std::min(lanes, n - i);
    const auto a = hn::IfThenElseZero(hn::FirstN(d, m), hn::Sub(load_tail(d, x + i, m), c));
    s1 = hn::MulAdd(a, a, s1);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
}

// out = (x - mean) * rstd * weight + bias (bias may be null); writes the row's mean and rstd.
// Two passes (mean, then variance about it): one pass loses digits when |mean| >> stddev.
inline void layer_norm(const float* x, const float* weight, const float* bias, float* out, std::size_t n, float eps,
                       float* mean_out, float* rstd_out) {
  if (n == 0) return;
  const float mean = sum_of(x, n) / static_cast<float>(n);
  const float variance = sum_squared_deviation(x, mean, n) / static_cast<float>(n);
  const float rstd = 1.0f / std::sqrt(variance + eps);
  if (mean_out) *mean_out = mean;
  if (rstd_out) *rstd_out = rstd;
  if (bias) {
    map_ternary(x, weight, bias, out, n, [mean, rstd](auto d, auto xv, auto w, auto b) HWY_ATTR {
      return hn::MulAdd(hn::Mul(hn::Sub(xv, hn::Set(d, mean)), hn::Set(d, rstd)), w, b);
    });
  } else {
    map_binary(x, weight, out, n, [mean, rstd](auto d, auto xv, auto w) HWY_ATTR {
      return hn::Mul(hn::Mul(hn::Sub(xv, hn::Set(d, mean)), hn::Set(d, rstd)), w);
    });
  }
}

// With xhat = (x - mean) * rstd and g = dy * weight:
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)),  dweight += dy * xhat,  dbias += dy.
// dbias may be null (no bias).
inline void layer_norm_backward(const float* x, const float* weight, float mean, float rstd, const float* dy, float* dx,
                                float* dweight, float* dbias, std::size_t n) {
  if (n == 0) return;
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto vmean = hn::Set(d, mean), vrstd = hn::Set(d, rstd);
  // First pass: the two row means that couple the elements.
  auto sum_g = hn::Zero(d), sum_g_xhat = hn::Zero(d);
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t m = std::min(lanes, n - i);
    const auto xhat = hn::Mul(hn::Sub(load_tail(d, x + i, m), vmean), vrstd);
    const auto g = hn::Mul(load_tail(d, dy + i, m), load_tail(d, weight + i, m));
    sum_g = hn::Add(sum_g, g);
    sum_g_xhat = hn::MulAdd(g, xhat, sum_g_xhat);
  }
  const float inv_n = 1.0f / static_cast<float>(n);
  const auto mean_g = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sum_g)) * inv_n);
  const auto mean_g_xhat = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sum_g_xhat)) * inv_n);
  // Second pass: the gradients.
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t m = std::min(lanes, n - i);
    const auto dyv = load_tail(d, dy + i, m);
    const auto xhat = hn::Mul(hn::Sub(load_tail(d, x + i, m), vmean), vrstd);
    const auto g = hn::Mul(dyv, load_tail(d, weight + i, m));
    const auto dxv = hn::MulAdd(vrstd, hn::NegMulAdd(xhat, mean_g_xhat, hn::Sub(g, mean_g)), load_tail(d, dx + i, m));
    store_tail(dxv, d, dx + i, m);
    store_tail(hn::MulAdd(dyv, xhat, load_tail(d, dweight + i, m)), d, dweight + i, m);
    if (dbias) store_tail(hn::Add(dyv, load_tail(d, dbias + i, m)), d, dbias + i, m);
  }
}

// out = x * rstd * weight with rstd = 1 / sqrt(mean(x^2) + eps); writes rstd.
inline void rms_norm(const float* x, const float* weight, float* out, std::size_t n, float eps, float* rstd_out) {
  if (n == 0) return;
  const float rstd = 1.0f / std::sqrt(sum_squared_deviation(x, 0.0f, n) / static_cast<float>(n) + eps);
  if (rstd_out) *rstd_out = rstd;
  map_binary(x, weight, out, n, [rstd](auto d, auto xv, auto w) HWY_ATTR { return hn::Mul(hn::Mul(xv, hn::Set(d, rstd)), w); });
}

// With xhat = x * rstd and g = dy * weight:  dx += rstd * (g - xhat * mean(g * xhat)),  dweight += dy * xhat.
inline void rms_norm_backward(const float* x, const float* weight, float rstd, const float* dy, float* dx, float* dweight,
                              std::size_t n) {
  if (n == 0) return;
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto vrstd = hn::Set(d, rstd);
  auto sum_g_xhat = hn::Zero(d);
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t m = std::min(lanes, n - i);
    const auto xhat = hn::Mul(load_tail(d, x + i, m), vrstd);
    const auto g = hn::Mul(load_tail(d, dy + i, m), load_tail(d, weight + i, m));
    sum_g_xhat = hn::MulAdd(g, xhat, sum_g_xhat);
  }
  const auto mean_g_xhat = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sum_g_xhat)) / static_cast<float>(n));
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t m = std::min(lanes, n - i);
    const auto dyv = load_tail(d, dy + i, m);
    const auto xhat = hn::Mul(load_tail(d, x + i, m), vrstd);
    const auto g = hn::Mul(dyv, load_tail(d, weight + i, m));
    store_tail(hn::MulAdd(vrstd, hn::NegMulAdd(xhat, mean_g_xhat, g), load_tail(d, dx + i, m)), d, dx + i, m);
    store_tail(hn::MulAdd(dyv, xhat, load_tail(d, dweight + i, m)), d, dweight + i, m);
  }
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
