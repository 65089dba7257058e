// One step of a recurrent cell for one sequence, fused into a single pass over the hidden units:
// the LSTM's gate activations, cell and output (and the backward of all of it), and the Elman
// network's tanh. In a training step these run once per (sequence, step, layer) between the
// per-step products, so they are written to keep every intermediate in registers. Per-target code,
// re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_RECURRENT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_RECURRENT_INL_HPP_
#undef LMKIT_KERNELS_RECURRENT_INL_HPP_
#else
#define LMKIT_KERNELS_RECURRENT_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace recurrent_detail {

/// 1 / x from the hardware estimate (14 bits on AVX-512, 12 on AVX2) and one Newton step: about
/// 23 bits, at a few cycles where a vector division takes ten or more. A step does five of them.
template <class D, class V>
HWY_INLINE V reciprocal(D d, V x) {
  const V r = hn::ApproximateReciprocal(x);
  return hn::Mul(r, hn::NegMulAdd(x, r, hn::Set(d, 2.0f)));  // r (2 - x r)
}

/// exp(x) for |x| <= 80 (callers clamp): x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts,
/// so that r is exact), exp(r) by Cephes' expf polynomial, 2^n added to the exponent bits. About
/// 1 ulp, like Highway's Exp, in half its instructions: it leaves out the handling of the whole
/// float range (a step evaluates five of these per unit). n is rounded by adding 1.5 * 2^23, which
/// leaves it in the low bits of the sum's mantissa: shifted up by 23 they are n's exponent bits.
template <class D, class V>
HWY_INLINE V exp_clamped(D d, V x) {
  const hn::RebindToUnsigned<D> du;  // unsigned: the shift and the add wrap, as intended
  const V magic = hn::Set(d, 12582912.0f);
  const V shifted = hn::MulAdd(x, hn::Set(d, 1.44269504088896341f), magic);
  const V n = hn::Sub(shifted, magic);
  const V r = hn::NegMulAdd(n, hn::Set(d, -2.12194440e-4f), hn::NegMulAdd(n, hn::Set(d, 0.693359375f), x));
  V p = hn::MulAdd(hn::Set(d, 1.9875691500e-4f), r, hn::Set(d, 1.3981999507e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 8.3334519073e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 4.1665795894e-2f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.6666665459e-1f));
  p = hn::MulAdd(p, r, hn::Set(d, 5.0000001201e-1f));
  const V e = hn::MulAdd(p, hn::Mul(r, r), hn::Add(r, hn::Set(d, 1.0f)));
  return hn::BitCast(d, hn::Add(hn::BitCast(du, e), hn::ShiftLeft<23>(hn::BitCast(du, shifted))));
}

/// 1 / (1 + exp(-x)); x is clamped to +-80 first (the result is then below float's smallest
/// normal, or 1).
template <class D, class V>
HWY_INLINE V sigmoid(D d, V x) {
  const V clamped = hn::Min(hn::Max(x, hn::Set(d, -80.0f)), hn::Set(d, 80.0f));
  return reciprocal(d, hn::Add(hn::Set(d, 1.0f), exp_clamped(d, hn::Neg(clamped))));
}

/// tanh x = (1 - e) / (1 + e) with e = exp(-2|x|), the sign put back; below |x| = 1/16, where
/// 1 - e would lose the low bits, a Taylor polynomial (error below 1e-12 there).
template <class D, class V>
HWY_INLINE V tanh(D d, V x) {
  const V one = hn::Set(d, 1.0f);
  const V ax = hn::Abs(x);
  const V e = exp_clamped(d, hn::Mul(hn::Set(d, -2.0f), hn::Min(ax, hn::Set(d, 40.0f))));
  const V large = hn::CopySignToAbs(hn::Mul(hn::Sub(one, e), reciprocal(d, hn::Add(one, e))), x);
  const V x2 = hn::Mul(x, x);
  V poly = hn::MulAdd(x2, hn::Set(d, -17.0f / 315.0f), hn::Set(d, 2.0f / 15.0f));
  poly = hn::MulAdd(x2, poly, hn::Set(d, -1.0f / 3.0f));
  const V small = hn::MulAdd(hn::Mul(x, x2), poly, x);
  return hn::IfThenElse(hn::Lt(ax, hn::Set(d, 1.0f / 16.0f)), small, large);
}

/// Loads and stores of `count` floats: a whole vector (count = Lanes, known at compile time, no
/// branch or mask) in the main loop, a masked one for the last partial vector.
template <bool Whole, class D>
HWY_INLINE hn::Vec<D> load(D d, const float* p, std::size_t count) {
  if constexpr (Whole) return hn::LoadU(d, p);
  else return load_tail(d, p, count);
}
template <bool Whole, class D>
HWY_INLINE void store(hn::Vec<D> v, D d, float* p, std::size_t count) {
  if constexpr (Whole) hn::StoreU(v, d, p);
  else store_tail(v, d, p, count);
}

template <bool Whole, class D>
HWY_INLINE void lstm_cell_units(D d, std::size_t j, std::size_t m, float* gates, const float* bias, const float* c_prev,
                                float* c, float* h, std::size_t n) {
  float* const gi = gates + j;
  float* const gf = gates + n + j;
  float* const gg = gates + 2 * n + j;
  float* const go = gates + 3 * n + j;
  const auto i = sigmoid(d, hn::Add(load<Whole>(d, gi, m), load<Whole>(d, bias + j, m)));
  const auto f = sigmoid(d, hn::Add(load<Whole>(d, gf, m), load<Whole>(d, bias + n + j, m)));
  const auto g = tanh(d, hn::Add(load<Whole>(d, gg, m), load<Whole>(d, bias + 2 * n + j, m)));
  const auto o = sigmoid(d, hn::Add(load<Whole>(d, go, m), load<Whole>(d, bias + 3 * n + j, m)));
  const auto cell = hn::MulAdd(f, load<Whole>(d, c_prev + j, m), hn::Mul(i, g));
  store<Whole>(i, d, gi, m);
  store<Whole>(f, d, gf, m);
  store<Whole>(g, d, gg, m);
  store<Whole>(o, d, go, m);
  store<Whole>(cell, d, c + j, m);
  store<Whole>(hn::Mul(o, tanh(d, cell)), d, h + j, m);
}

template <bool Whole, class D>
HWY_INLINE void lstm_cell_backward_units(D d, std::size_t j, std::size_t m, const float* gates, float* dpre,
                                         const float* c_prev, const float* c, const float* dy, const float* dh, float* dc,
                                         std::size_t n) {
  const auto one = hn::Set(d, 1.0f);
  const auto i = load<Whole>(d, gates + j, m), f = load<Whole>(d, gates + n + j, m),
             g = load<Whole>(d, gates + 2 * n + j, m), o = load<Whole>(d, gates + 3 * n + j, m);
  float* const gi = dpre + j;
  float* const gf = dpre + n + j;
  float* const gg = dpre + 2 * n + j;
  float* const go = dpre + 3 * n + j;
  const auto dh_total = hn::Add(load<Whole>(d, dy + j, m), load<Whole>(d, dh + j, m));
  const auto tanh_c = tanh(d, load<Whole>(d, c + j, m));
  // dL/dc_t: from the next step, plus through h = o tanh(c).
  const auto dc_total = hn::MulAdd(hn::Mul(dh_total, o), hn::NegMulAdd(tanh_c, tanh_c, one), load<Whole>(d, dc + j, m));
  store<Whole>(hn::Mul(dc_total, f), d, dc + j, m);
  // Through the activations: sigmoid' = s (1 - s), tanh' = 1 - t^2.
  store<Whole>(hn::Mul(hn::Mul(dc_total, g), hn::Mul(i, hn::Sub(one, i))), d, gi, m);
  store<Whole>(hn::Mul(hn::Mul(dc_total, load<Whole>(d, c_prev + j, m)), hn::Mul(f, hn::Sub(one, f))), d, gf, m);
  store<Whole>(hn::Mul(hn::Mul(dc_total, i), hn::NegMulAdd(g, g, one)), d, gg, m);
  store<Whole>(hn::Mul(hn::Mul(dh_total, tanh_c), hn::Mul(o, hn::Sub(one, o))), d, go, m);
}

template <bool Whole, class D>
HWY_INLINE void elman_cell_units(D d, std::size_t j, std::size_t m, float* gates, const float* bias, float* h) {
  const auto v = tanh(d, hn::Add(load<Whole>(d, gates + j, m), load<Whole>(d, bias + j, m)));
  store<Whole>(v, d, gates + j, m);
  store<Whole>(v, d, h + j, m);
}

template <bool Whole, class D>
HWY_INLINE void elman_cell_backward_units(D d, std::size_t j, std::size_t m, const float* gates, float* dpre,
                                          const float* dy, const float* dh) {
  const auto h = load<Whole>(d, gates + j, m);
  const auto dh_total = hn::Add(load<Whole>(d, dy + j, m), load<Whole>(d, dh + j, m));
  store<Whole>(hn::Mul(dh_total, hn::NegMulAdd(h, h, hn::Set(d, 1.0f))), d, dpre + j, m);
}

}  // namespace recurrent_detail

// Each kernel runs its units a vector at a time: whole vectors, then the last partial one.

// gates [4n] = (i, f, g, o) pre-activations without biases -> activations; c = f c_prev + i g; h = o tanh(c).
inline void lstm_cell(float* gates, const float* bias, const float* c_prev, float* c, float* h, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) recurrent_detail::lstm_cell_units<true>(d, j, lanes, gates, bias, c_prev, c, h, n);
  if (j < n) recurrent_detail::lstm_cell_units<false>(d, j, n - j, gates, bias, c_prev, c, h, n);
}

// gates [4n] activations -> dpre [4n] gradients of the pre-activations (may be gates); dL/dh = dy + dh;
// dc: dL/dc -> dL/dc_prev.
inline void lstm_cell_backward(const float* gates, float* dpre, const float* c_prev, const float* c, const float* dy,
                               const float* dh, float* dc, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes)
    recurrent_detail::lstm_cell_backward_units<true>(d, j, lanes, gates, dpre, c_prev, c, dy, dh, dc, n);
  if (j < n) recurrent_detail::lstm_cell_backward_units<false>(d, j, n - j, gates, dpre, c_prev, c, dy, dh, dc, n);
}

// gates [n] = pre-activations without bias -> h = tanh(pre + bias), also written to h.
inline void elman_cell(float* gates, const float* bias, float* h, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) recurrent_detail::elman_cell_units<true>(d, j, lanes, gates, bias, h);
  if (j < n) recurrent_detail::elman_cell_units<false>(d, j, n - j, gates, bias, h);
}

// gates [n] = h -> dpre [n] = dL/dpre = (dy + dh) (1 - h^2) (dpre may be gates).
inline void elman_cell_backward(const float* gates, float* dpre, const float* dy, const float* dh, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) recurrent_detail::elman_cell_backward_units<true>(d, j, lanes, gates, dpre, dy, dh);
  if (j < n) recurrent_detail::elman_cell_backward_units<false>(d, j, n - j, gates, dpre, dy, dh);
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
