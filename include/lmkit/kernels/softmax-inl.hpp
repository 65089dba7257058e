// Numerically stable softmax and log-softmax over one row, and their backward. Per-target code,
// re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_SOFTMAX_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_SOFTMAX_INL_HPP_
#undef LMKIT_KERNELS_SOFTMAX_INL_HPP_
#else
#define LMKIT_KERNELS_SOFTMAX_INL_HPP_
#endif

#include <cmath>
#include <cstddef>
#include <limits>

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "lmkit/kernels/elementwise-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Largest element of x[0, n); -inf for n = 0.
inline float max_of(const float* x, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto lowest = hn::Set(d, -std::numeric_limits<float>::infinity());
  auto m0 = lowest, m1 = lowest;
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    m0 = hn::Max(m0, hn::LoadU(d, x + i));
    m1 = hn::Max(m1, hn::LoadU(d, x + i + lanes));
  }
  for (; i + lanes <= n; i += lanes) m0 = hn::Max(m0, hn::LoadU(d, x + i));
  if (i < n) {
    const std::size_t m = std::min(lanes, n - i);
    m1 = hn::Max(m1, hn::IfThenElse(hn::FirstN(d, m), load_tail(d, x + i, m), lowest));
  }
  return hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
}

/// Sum of x[0, n) with two accumulators (the order is fixed: results do not depend on threads).
inline float sum_of(const float* x, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    s0 = hn::Add(s0, hn::LoadU(d, x + i));
    s1 = hn::Add(s1, hn::LoadU(d, x + i + lanes));
  }
  for (; i + lanes <= n; i += lanes) s0 = hn::Add(s0, hn::LoadU(d, x + i));
  if (i < n) s1 = hn::Add(s1, load_tail(d, x + i, n - i));
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
}

/// Dot product of a[0, n) and b[0, n).
inline float dot(const float* a, const float* b, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + lanes), hn::LoadU(d, b + i + lanes), s1);
  }
  for (; i + lanes <= n; i += lanes) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  if (i < n) {
    const std::size_t m = std::min(lanes, n - i);
    s1 = hn::MulAdd(load_tail(d, a + i, m), load_tail(d, b + i, m), s1);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
}

/// Returns the sum of exp(x[i] - shift), and writes each term to out[i] unless `out` is null.
/// Exp is zero below -104 by itself.
inline float exp_shifted(const float* x, float shift, float* out, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto s = hn::Set(d, shift);
  auto sum = hn::Zero(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), s));
    sum = hn::Add(sum, e);
    if (out) hn::StoreU(e, d, out + i);
  }
  if (i < n) {
    const std::size_t m = std::min(lanes, n - i);
    const auto e = hn::IfThenElseZero(hn::FirstN(d, m), hn::Exp(d, hn::Sub(load_tail(d, x + i, m), s)));
    sum = hn::Add(sum, e);
    if (out) store_tail(e, d, out + i, m);
  }
  return hn::GetLane(hn::SumOfLanes(d, sum));
}

// out = softmax(x); out may alias x.
inline void softmax(const float* x, float* out, std::size_t n) {
  if (n == 0) return;
  const float sum = exp_shifted(x, max_of(x, n), out, n);
  scale(out, 1.0f / sum, out, n);
}

// out = log_softmax(x) = x - max - log(sum(exp(x - max))); out may alias x.
inline void log_softmax(const float* x, float* out, std::size_t n) {
  if (n == 0) return;
  const float max = max_of(x, n);
  // The exponentials are only summed, never stored: `out` may be `x`, still read below.
  const float log_sum = std::log(exp_shifted(x, max, nullptr, n));
  // (x - max) - log_sum, not x - (max + log_sum): the sum max + log_sum would round at max's
  // magnitude and cost the entries near the maximum all their digits.
  map_unary(x, out, n, [max, log_sum](auto d, auto v) HWY_ATTR {
    return hn::Sub(hn::Sub(v, hn::Set(d, max)), hn::Set(d, log_sum));
  });
}

// dx += y * (dy - <dy, y>), with y = softmax(x).
inline void softmax_backward(const float* y, const float* dy, float* dx, std::size_t n) {
  const float inner = dot(dy, y, n);
  map_ternary(y, dy, dx, dx, n, [inner](auto d, auto yv, auto dyv, auto dxv) HWY_ATTR {
    return hn::MulAdd(yv, hn::Sub(dyv, hn::Set(d, inner)), dxv);
  });
}

// dx += dy - exp(y) * sum(dy), with y = log_softmax(x).
inline void log_softmax_backward(const float* y, const float* dy, float* dx, std::size_t n) {
  const float total = sum_of(dy, n);
  map_ternary(y, dy, dx, dx, n, [total](auto d, auto yv, auto dyv, auto dxv) HWY_ATTR {
    return hn::Add(dxv, hn::NegMulAdd(hn::Exp(d, yv), hn::Set(d, total), dyv));
  });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
