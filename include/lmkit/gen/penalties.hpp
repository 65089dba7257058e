// Penalties on the tokens of the recent history, as llama.cpp's penalties sampler and Hugging
// Face's RepetitionPenaltyLogitsProcessor define them. For each distinct token among the last
// `window` tokens of the history, occurring `count` times:
//
//   repetition (CTRL, Keskar et al. 2019):  logit = logit > 0 ? logit / repeat : logit * repeat
//   frequency and presence (OpenAI's API):  logit -= count * frequency + (count > 0) * presence
//
// in that order. repeat = 1, frequency = 0, presence = 0 and window = 0 each switch a part off;
// window = whole_history looks at all of it (llama.cpp's --repeat-last-n -1). The history is
// counted once per token (O(window log window)); only the counted tokens are touched.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "lmkit/core/error.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"
#include "lmkit/gen/token_history.hpp"

namespace lmkit::gen {

/// All three penalties over one window (llama.cpp's `penalties` sampler).
struct penalties {
  float repeat = 1.0f;     // --repeat-penalty
  float frequency = 0.0f;  // --frequency-penalty
  float presence = 0.0f;   // --presence-penalty
  std::size_t window = 64; // --repeat-last-n

  bool enabled() const { return window > 0 && (repeat != 1.0f || frequency != 0.0f || presence != 0.0f); }

  void apply(candidates& c, const sample_context& ctx) const {
    require<argument_error>(repeat > 0.0f && std::isfinite(repeat), "penalties: the repetition penalty must be > 0, got ",
                            repeat);
    require<argument_error>(std::isfinite(frequency) && std::isfinite(presence),
                            "penalties: frequency and presence penalties must be finite");
    if (!enabled() || ctx.history.empty()) return;
    auto& ids = c.scratch_ids();
    auto& counts = c.scratch_counts();
    count_window(ctx.history, window, c.vocabulary(), ids, counts);
    const float r = repeat, f = frequency, p = presence;
    c.adjust(ids, [&](std::size_t j, float logit) {
      if (logit == candidates::minus_infinity) return logit;  // banned stays banned
      if (r != 1.0f) logit = logit > 0.0f ? logit / r : logit * r;
      return logit - (static_cast<float>(counts[j]) * f + p);  // count > 0 for every counted token
    });
  }
};

/// The repetition penalty alone (CTRL; HF's `repetition_penalty`).
struct repetition_penalty {
  float penalty = 1.0f;
  std::size_t window = 64;
  void apply(candidates& c, const sample_context& ctx) const { penalties{penalty, 0.0f, 0.0f, window}.apply(c, ctx); }
};

/// logit -= count * penalty for the tokens in the window.
struct frequency_penalty {
  float penalty = 0.0f;
  std::size_t window = 64;
  void apply(candidates& c, const sample_context& ctx) const { penalties{1.0f, penalty, 0.0f, window}.apply(c, ctx); }
};

/// logit -= penalty for each token present in the window.
struct presence_penalty {
  float penalty = 0.0f;
  std::size_t window = 64;
  void apply(candidates& c, const sample_context& ctx) const { penalties{1.0f, 0.0f, penalty, window}.apply(c, ctx); }
};

}  // namespace lmkit::gen
