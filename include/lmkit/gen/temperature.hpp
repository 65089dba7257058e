// Temperature: logit /= t before the draw (llama.cpp's temp sampler, HF's TemperatureLogitsWarper).
// t = 0 (or below) is greedy: only the most likely token in play is kept, the lowest id among
// equal logits, so the draw is deterministic. t = 1 changes nothing. In llama.cpp's default order
// temperature comes last, after the truncations, so top-p and min-p see the untempered
// probabilities (HF applies it first; put the part first in a chain to get that).
#pragma once

#include <cmath>

#include "lmkit/core/error.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"

namespace lmkit::gen {

struct temperature {
  float t = 1.0f;  // --temp

  void apply(candidates& c, const sample_context&) const {
    require<argument_error>(!std::isnan(t) && std::isfinite(t), "temperature: t must be a finite number, got ", t);
    if (t <= 0.0f) {
      c.keep_best();
    } else if (t != 1.0f) {
      c.divide_logits(t);
    }
  }
};

/// Always the most likely token (ties: the lowest id). The same as temperature{0}.
struct greedy {
  void apply(candidates& c, const sample_context&) const { c.keep_best(); }
};

}  // namespace lmkit::gen
