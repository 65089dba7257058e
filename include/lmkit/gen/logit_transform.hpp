// A user's element-wise change of the logits, written once with xsimd (a generic callable over
// xsimd::batch<float> and float, see simd/transform.hpp) and plugged into either chain:
//
//   struct soft_cap {                      // Gemma 2's final logit soft-capping
//     float cap = 30.0f;
//     template <class T> T operator()(T x) const { return T(cap) * xsimd::tanh(x / T(cap)); }
//   };
//   gen::sampler_chain<gen::logit_transform<soft_cap>, gen::top_k, gen::temperature> chain{{}, {40}, {0.8f}};
//
// Applied to every token still in play: before any cut, that is the whole vocabulary (copied once
// into the candidates' own buffer); after top-k, only the k survivors. A result of -inf bans the
// token; NaN or +inf is an argument_error naming the token.
#pragma once

#include <utility>

#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"
#include "lmkit/simd/transform.hpp"

namespace lmkit::gen {

template <simd::elementwise_functor F>
struct logit_transform {
  F f{};

  void apply(candidates& c, const sample_context&) const { c.transform(f); }
};

template <class F>
logit_transform(F) -> logit_transform<F>;

}  // namespace lmkit::gen
