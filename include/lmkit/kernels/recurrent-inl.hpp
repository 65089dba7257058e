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

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "lmkit/kernels/activation-inl.hpp"
#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// gates [4n] = (i, f, g, o) pre-activations without biases -> activations; c = f c_prev + i g; h = o tanh(c).
inline void lstm_cell(float* gates, const float* bias, const float* c_prev, float* c, float* h, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  float* const gi = gates;
  float* const gf = gates + n;
  float* const gg = gates + 2 * n;
  float* const go = gates + 3 * n;
  for (std::size_t j = 0; j < n; j += lanes) {
    const std::size_t m = std::min(lanes, n - j);
    const auto i = activation::sigmoid(d, hn::Add(load_tail(d, gi + j, m), load_tail(d, bias + j, m)));
    const auto f = activation::sigmoid(d, hn::Add(load_tail(d, gf + j, m), load_tail(d, bias + n + j, m)));
    const auto g = hn::Tanh(d, hn::Add(load_tail(d, gg + j, m), load_tail(d, bias + 2 * n + j, m)));
    const auto o = activation::sigmoid(d, hn::Add(load_tail(d, go + j, m), load_tail(d, bias + 3 * n + j, m)));
    const auto cell = hn::MulAdd(f, load_tail(d, c_prev + j, m), hn::Mul(i, g));
    store_tail(i, d, gi + j, m);
    store_tail(f, d, gf + j, m);
    store_tail(g, d, gg + j, m);
    store_tail(o, d, go + j, m);
    store_tail(cell, d, c + j, m);
    store_tail(hn::Mul(o, hn::Tanh(d, cell)), d, h + j, m);
  }
}

// gates [4n] = activations -> gradients of the pre-activations; dL/dh = dy + dh; dc: dL/dc -> dL/dc_prev.
inline void lstm_cell_backward(float* gates, const float* c_prev, const float* c, const float* dy, const float* dh,
                               float* dc, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  float* const gi = gates;
  float* const gf = gates + n;
  float* const gg = gates + 2 * n;
  float* const go = gates + 3 * n;
  for (std::size_t j = 0; j < n; j += lanes) {
    const std::size_t m = std::min(lanes, n - j);
    const auto i = load_tail(d, gi + j, m), f = load_tail(d, gf + j, m), g = load_tail(d, gg + j, m),
               o = load_tail(d, go + j, m);
    const auto dh_total = hn::Add(load_tail(d, dy + j, m), load_tail(d, dh + j, m));
    const auto tanh_c = hn::Tanh(d, load_tail(d, c + j, m));
    // dL/dc_t: from the next step, plus through h = o tanh(c).
    const auto dc_total = hn::MulAdd(hn::Mul(dh_total, o), hn::NegMulAdd(tanh_c, tanh_c, one), load_tail(d, dc + j, m));
    store_tail(hn::Mul(dc_total, f), d, dc + j, m);
    // Through the activations: sigmoid' = s (1 - s), tanh' = 1 - t^2.
    store_tail(hn::Mul(hn::Mul(dc_total, g), hn::Mul(i, hn::Sub(one, i))), d, gi + j, m);
    store_tail(hn::Mul(hn::Mul(dc_total, load_tail(d, c_prev + j, m)), hn::Mul(f, hn::Sub(one, f))), d, gf + j, m);
    store_tail(hn::Mul(hn::Mul(dc_total, i), hn::NegMulAdd(g, g, one)), d, gg + j, m);
    store_tail(hn::Mul(hn::Mul(dh_total, tanh_c), hn::Mul(o, hn::Sub(one, o))), d, go + j, m);
  }
}

// gates [n] = pre-activations without bias -> h = tanh(pre + bias), also written to h.
inline void elman_cell(float* gates, const float* bias, float* h, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  for (std::size_t j = 0; j < n; j += lanes) {
    const std::size_t m = std::min(lanes, n - j);
    const auto v = hn::Tanh(d, hn::Add(load_tail(d, gates + j, m), load_tail(d, bias + j, m)));
    store_tail(v, d, gates + j, m);
    store_tail(v, d, h + j, m);
  }
}

// gates [n] = h -> dL/dpre = (dy + dh) (1 - h^2).
inline void elman_cell_backward(float* gates, const float* dy, const float* dh, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  for (std::size_t j = 0; j < n; j += lanes) {
    const std::size_t m = std::min(lanes, n - j);
    const auto h = load_tail(d, gates + j, m);
    const auto dh_total = hn::Add(load_tail(d, dy + j, m), load_tail(d, dh + j, m));
    store_tail(hn::Mul(dh_total, hn::NegMulAdd(h, h, one)), d, gates + j, m);
  }
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
