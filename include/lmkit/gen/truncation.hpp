// The parts that cut the candidates down to the likely ones, with the semantics of llama.cpp's
// samplers and Hugging Face's logits warpers. Probabilities are softmax over the tokens still in
// play when the part runs (so in llama.cpp's default order, before temperature). Every part keeps
// at least `min_keep` tokens (llama.cpp's --min-keep, HF's min_tokens_to_keep; 0 counts as 1).
// Ties are broken by rank: higher logit first, then lower id.
//
//   top_k      the k most likely tokens. k = 0 switches it off; k >= vocabulary keeps all.
//   top_p      nucleus sampling (Holtzman et al. 2019): the smallest set of most likely tokens
//              whose probability reaches p (cumulative >= p). p = 1 keeps all.
//   min_p      the tokens with p_i >= min_p * p_max, i.e. logit_i >= logit_max + ln(min_p).
//              min_p = 0 switches it off.
//   typical_p  locally typical sampling (Meister et al. 2022, HF's TypicalLogitsWarper): order the
//              tokens by |-ln p_i - H| (H the entropy of the distribution), keep the smallest
//              prefix of that order whose probability reaches p. p = 1 switches it off.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "lmkit/core/error.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"

namespace lmkit::gen {

struct top_k {
  std::size_t k = 0;         // --top-k
  std::size_t min_keep = 1;  // --min-keep

  bool enabled() const { return k > 0; }

  void apply(candidates& c, const sample_context&) const {
    if (!enabled()) return;
    c.keep_top(std::max(k, min_keep));
  }
};

struct top_p {
  float p = 1.0f;            // --top-p
  std::size_t min_keep = 1;  // --min-keep

  bool enabled() const { return p < 1.0f; }

  void apply(candidates& c, const sample_context&) const {
    require<argument_error>(p >= 0.0f && p <= 1.0f, "top_p: p must be in [0, 1], got ", p);
    if (!enabled()) return;
    const std::size_t keep_at_least = std::max<std::size_t>(min_keep, 1);
    const std::size_t sorted = c.sort_until_mass(p, keep_at_least);
    const auto items = c.items();
    double cumulative = 0.0;
    for (std::size_t i = 0; i < sorted; ++i) {
      cumulative += items[i].prob;
      if (cumulative >= p && i + 1 >= keep_at_least) {
        c.truncate(i + 1);
        return;
      }
    }
  }
};

struct min_p {
  float p = 0.0f;            // --min-p
  std::size_t min_keep = 1;  // --min-keep

  bool enabled() const { return p > 0.0f; }

  void apply(candidates& c, const sample_context&) const {
    require<argument_error>(p >= 0.0f && p <= 1.0f, "min_p: p must be in [0, 1], got ", p);
    if (!enabled()) return;
    const float best = c.max_logit();
    if (best == candidates::minus_infinity) return;  // all banned: the draw reports it
    c.keep_at_least(best + std::log(p), min_keep);
  }
};

struct typical_p {
  float p = 1.0f;            // --typical
  std::size_t min_keep = 1;  // --min-keep

  bool enabled() const { return p < 1.0f; }

  void apply(candidates& c, const sample_context&) const {
    require<argument_error>(p >= 0.0f && p <= 1.0f, "typical_p: p must be in [0, 1], got ", p);
    if (!enabled()) return;
    c.normalise();
    double entropy = 0.0;
    for (const candidate& x : c.items())
      if (x.prob > 0.0f) entropy -= static_cast<double>(x.prob) * std::log(static_cast<double>(x.prob));
    c.sort_by([&](const candidate& x) {
      return x.prob > 0.0f ? std::abs(-std::log(static_cast<double>(x.prob)) - entropy)
                           : std::numeric_limits<double>::infinity();
    });
    const auto items = c.items();
    const std::size_t keep_at_least = std::max<std::size_t>(min_keep, 1);
    double cumulative = 0.0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      cumulative += items[i].prob;
      if (cumulative >= p && i + 1 >= keep_at_least) {
        c.truncate(i + 1);
        return;
      }
    }
  }
};

}  // namespace lmkit::gen
