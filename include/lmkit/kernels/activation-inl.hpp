// Activations and their derivatives: GELU (tanh and erf forms) and SiLU. Per-target code,
// re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_ACTIVATION_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_ACTIVATION_INL_HPP_
#undef LMKIT_KERNELS_ACTIVATION_INL_HPP_
#else
#define LMKIT_KERNELS_ACTIVATION_INL_HPP_
#endif

#include <cstddef>

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "lmkit/kernels/elementwise-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace activation {
constexpr float sqrt_2_over_pi = 0.7978845608028654f;
constexpr float gelu_cubic = 0.044715f;
constexpr float inv_sqrt_2 = 0.7071067811865476f;
constexpr float inv_sqrt_2pi = 0.3989422804014327f;

/// 1 / x: the hardware estimate refined by one Newton step, r (2 - x r), to float precision (a
/// division costs several times as much, and erf needs one per element).
template <class D, class V>
HWY_INLINE V reciprocal(D d, V x) {
  const V r = hn::ApproximateReciprocal(x);
  return hn::Mul(r, hn::NegMulAdd(x, r, hn::Set(d, 2.0f)));
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7, below float's resolution of
/// GELU's output), given exp(-x^2) (which GELU's derivative needs too); Highway 1.0.3 has no Erf.
template <class D, class V>
HWY_INLINE V erf_given_exp(D d, V x, V exp_minus_x2) {
  const V sign = hn::And(hn::SignBit(d), x);
  // |x| capped where erf is 1 in float, so that the reciprocal's Newton step never sees infinity.
  const V z = hn::Min(hn::Xor(x, sign), hn::Set(d, 10.0f));
  const V t = reciprocal(d, hn::MulAdd(hn::Set(d, 0.3275911f), z, hn::Set(d, 1.0f)));
  V poly = hn::Set(d, 1.061405429f);
  poly = hn::MulAdd(poly, t, hn::Set(d, -1.453152027f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 1.421413741f));
  poly = hn::MulAdd(poly, t, hn::Set(d, -0.284496736f));
  poly = hn::MulAdd(poly, t, hn::Set(d, 0.254829592f));
  poly = hn::Mul(poly, t);
  const V result = hn::NegMulAdd(poly, exp_minus_x2, hn::Set(d, 1.0f));
  return hn::Xor(result, sign);
}

template <class D, class V>
HWY_INLINE V erf(D d, V x) {
  return erf_given_exp(d, x, hn::Exp(d, hn::Neg(hn::Mul(x, x))));
}

/// The logistic sigmoid, computed from exp(-|x|) so that exp never overflows.
template <class D, class V>
HWY_INLINE V sigmoid(D d, V x) {
  const V one = hn::Set(d, 1.0f);
  const V e = hn::Exp(d, hn::Neg(hn::Abs(x)));       // in (0, 1]
  const V positive = hn::Div(one, hn::Add(one, e));  // sigmoid(|x|)
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Sub(one, positive), positive);
}

template <class D, class V>
HWY_INLINE V gelu_tanh(D d, V x) {
  const V x3 = hn::Mul(hn::Mul(x, x), x);
  const V u = hn::Mul(hn::Set(d, sqrt_2_over_pi), hn::MulAdd(hn::Set(d, gelu_cubic), x3, x));
  const V half_x = hn::Mul(hn::Set(d, 0.5f), x);
  return hn::MulAdd(half_x, hn::Tanh(d, u), half_x);
}

template <class D, class V>
HWY_INLINE V gelu_tanh_derivative(D d, V x) {
  const V x2 = hn::Mul(x, x);
  const V u = hn::Mul(hn::Set(d, sqrt_2_over_pi), hn::Mul(x, hn::MulAdd(hn::Set(d, gelu_cubic), x2, hn::Set(d, 1.0f))));
  const V t = hn::Tanh(d, u);
  const V du = hn::Mul(hn::Set(d, sqrt_2_over_pi), hn::MulAdd(hn::Set(d, 3.0f * gelu_cubic), x2, hn::Set(d, 1.0f)));
  const V half = hn::Set(d, 0.5f);
  // 0.5 (1 + t) + 0.5 x (1 - t^2) du
  const V sech2 = hn::NegMulAdd(t, t, hn::Set(d, 1.0f));
  return hn::MulAdd(hn::Mul(half, x), hn::Mul(sech2, du), hn::MulAdd(half, t, half));
}

template <class D, class V>
HWY_INLINE V gelu_erf(D d, V x) {
  const V half_x = hn::Mul(hn::Set(d, 0.5f), x);
  return hn::MulAdd(half_x, erf(d, hn::Mul(x, hn::Set(d, inv_sqrt_2))), half_x);
}

/// Phi(x) + x phi(x): the normal distribution and density, sharing exp(-x^2 / 2).
template <class D, class V>
HWY_INLINE V gelu_erf_derivative(D d, V x) {
  const V half = hn::Set(d, 0.5f);
  const V e = hn::Exp(d, hn::Mul(hn::Set(d, -0.5f), hn::Mul(x, x)));  // = exp(-u^2), u = x / sqrt(2)
  const V cdf = hn::MulAdd(half, erf_given_exp(d, hn::Mul(x, hn::Set(d, inv_sqrt_2)), e), half);
  const V pdf = hn::Mul(hn::Set(d, inv_sqrt_2pi), e);
  return hn::MulAdd(x, pdf, cdf);
}

template <class D, class V>
HWY_INLINE V silu(D d, V x) {
  return hn::Mul(x, sigmoid(d, x));
}

template <class D, class V>
HWY_INLINE V silu_derivative(D d, V x) {
  const V s = sigmoid(d, x);
  const V one = hn::Set(d, 1.0f);
  return hn::Mul(s, hn::MulAdd(x, hn::Sub(one, s), one));  // s (1 + x (1 - s))
}
}  // namespace activation

inline void gelu_tanh(const float* x, float* out, std::size_t n) {
  map_unary(x, out, n, [](auto d, auto v) HWY_ATTR { return activation::gelu_tanh(d, v); });
}
inline void gelu_erf(const float* x, float* out, std::size_t n) {
  map_unary(x, out, n, [](auto d, auto v) HWY_ATTR { return activation::gelu_erf(d, v); });
}
inline void silu(const float* x, float* out, std::size_t n) {
  map_unary(x, out, n, [](auto d, auto v) HWY_ATTR { return activation::silu(d, v); });
}

/// dx += dy * f'(x), over n elements; dx = dy * f'(x) when not `accumulate` (no zeroing pass over
/// dx first: these arrays are the MLP's widest and the step's memory traffic).
template <class Derivative>
HWY_INLINE void activation_backward(const float* x, const float* dy, float* dx, std::size_t n, bool accumulate,
                                    const Derivative& derivative) {
  if (!accumulate) {
    map_binary(x, dy, dx, n, [&derivative](auto d, auto xv, auto dyv) HWY_ATTR { return hn::Mul(dyv, derivative(d, xv)); });
    return;
  }
  map_ternary(x, dy, dx, dx, n, [&derivative](auto d, auto xv, auto dyv, auto dxv) HWY_ATTR {
    return hn::MulAdd(dyv, derivative(d, xv), dxv);
  });
}

inline void gelu_tanh_backward(const float* x, const float* dy, float* dx, std::size_t n, bool accumulate) {
  activation_backward(x, dy, dx, n, accumulate, [](auto d, auto v) HWY_ATTR { return activation::gelu_tanh_derivative(d, v); });
}
inline void gelu_erf_backward(const float* x, const float* dy, float* dx, std::size_t n, bool accumulate) {
  activation_backward(x, dy, dx, n, accumulate, [](auto d, auto v) HWY_ATTR { return activation::gelu_erf_derivative(d, v); });
}
inline void silu_backward(const float* x, const float* dy, float* dx, std::size_t n, bool accumulate) {
  activation_backward(x, dy, dx, n, accumulate, [](auto d, auto v) HWY_ATTR { return activation::silu_derivative(d, v); });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
