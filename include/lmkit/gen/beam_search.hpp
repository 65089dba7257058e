// Beam search: keep the `width` most likely continuations (by the sum of their tokens' log-
// probabilities), extend each by every token, keep the best `width` again. A continuation ends at
// a stop token (it is kept, and counts in its length) or at max_tokens. Hypotheses are ranked as
// Hugging Face's BeamSearchScorer ranks them:
//
//   score = sum of log p(token) / (generated length ^ length_penalty)
//
// (length_penalty > 0 favours longer ones, < 0 shorter ones, 0 ranks by the plain sum.) As in HF
// (early_stopping = false), a step's stop token counts only if it ranks among the best `width`
// candidates, and the search ends once `width` hypotheses are finished and the best live beam, at
// its current length, can no longer beat the worst of them.
//
// One model serves all beams: before a beam is extended the model is rewound to the longest
// prefix it shares with the tokens it holds (truncate) and fed the rest. So a step re-feeds about
// width x (tokens since the beams parted); no KV cache is copied. log-probabilities are
// log_softmax of the model's scores (no sampler chain). Ties: the lower beam, then the lower id.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/gen/language_model.hpp"
#include "lmkit/gen/logprobs.hpp"

namespace lmkit::gen {

struct beam_options {
  std::size_t width = 4;
  std::size_t max_tokens = 32;
  float length_penalty = 1.0f;  // HF's length_penalty (alpha)
  std::vector<token_id> stop_tokens{};
};

struct beam_hypothesis {
  std::vector<token_id> tokens;  // generated (a final stop token included)
  double logprob = 0.0;          // sum of the tokens' log-probabilities
  double score = 0.0;            // logprob / len^length_penalty
  bool finished = false;         // ended by a stop token
};

namespace detail {

inline double beam_score(double logprob, std::size_t length, float alpha) {
  return length == 0 ? logprob : logprob / std::pow(static_cast<double>(length), static_cast<double>(alpha));
}

}  // namespace detail

/// The best hypotheses, best first (at most `width`).
template <language_model M>
std::vector<beam_hypothesis> beam_search(M& model, std::span<const token_id> prompt, const beam_options& o = {}) {
  require<argument_error>(!prompt.empty(), "beam_search: the prompt is empty");
  require<argument_error>(o.width >= 1, "beam_search: width must be at least 1");
  require<argument_error>(std::isfinite(o.length_penalty), "beam_search: length_penalty must be finite");
  const std::size_t context = model.context_length();
  if (context > 0 && prompt.size() + o.max_tokens > context)
    throw argument_error(lmkit::detail::concat("beam_search: the prompt's ", prompt.size(), " tokens + max_tokens ",
                                               o.max_tokens, " = ", prompt.size() + o.max_tokens,
                                               " exceed the model's context of ", context, " positions"));
  const std::size_t vocab = model.vocab_size();
  auto is_stop = [&](token_id t) { return std::find(o.stop_tokens.begin(), o.stop_tokens.end(), t) != o.stop_tokens.end(); };

  // What the model holds beyond position 0, to rewind only as far as needed.
  std::vector<token_id> held;
  model.truncate(0);
  std::vector<token_id> sequence;
  auto scores_after = [&](std::span<const token_id> generated) {
    sequence.assign(prompt.begin(), prompt.end());
    sequence.insert(sequence.end(), generated.begin(), generated.end());
    std::size_t common = 0;
    while (common < held.size() && common < sequence.size() && held[common] == sequence[common]) ++common;
    common = std::min(common, sequence.size() - 1);  // at least one token to get scores from
    model.truncate(common);
    held = sequence;
    return model.append(std::span<const token_id>(sequence).subspan(common));
  };

  struct candidate_step {
    double logprob;
    std::size_t beam;
    token_id token;
  };
  std::vector<beam_hypothesis> live(1), finished, next;
  std::vector<float> lp(vocab);
  std::vector<candidate_step> steps, best_of_beam;
  const std::size_t keep = 2 * o.width;  // as HF: enough to fill the beams after stop tokens

  for (std::size_t length = 1; length <= o.max_tokens && !live.empty(); ++length) {
    steps.clear();
    for (std::size_t b = 0; b < live.size(); ++b) {
      log_softmax(scores_after(live[b].tokens), lp);
      best_of_beam.clear();
      for (std::size_t v = 0; v < vocab; ++v)
        if (lp[v] > -std::numeric_limits<float>::infinity())
          best_of_beam.push_back({live[b].logprob + lp[v], b, static_cast<token_id>(v)});
      auto better = [](const candidate_step& x, const candidate_step& y) {
        return x.logprob > y.logprob || (x.logprob == y.logprob && (x.beam < y.beam || (x.beam == y.beam && x.token < y.token)));
      };
      const std::size_t n = std::min(keep, best_of_beam.size());
      std::partial_sort(best_of_beam.begin(), best_of_beam.begin() + static_cast<std::ptrdiff_t>(n), best_of_beam.end(), better);
      steps.insert(steps.end(), best_of_beam.begin(), best_of_beam.begin() + static_cast<std::ptrdiff_t>(n));
    }
    std::sort(steps.begin(), steps.end(), [](const candidate_step& x, const candidate_step& y) {
      return x.logprob > y.logprob || (x.logprob == y.logprob && (x.beam < y.beam || (x.beam == y.beam && x.token < y.token)));
    });
    next.clear();
    for (std::size_t rank = 0; rank < steps.size() && next.size() < o.width; ++rank) {
      const candidate_step& s = steps[rank];
      beam_hypothesis h{live[s.beam].tokens, s.logprob, 0.0, false};
      h.tokens.push_back(s.token);
      if (is_stop(s.token)) {
        if (rank >= o.width) continue;  // HF: a stop token only from the best `width`
        h.finished = true;
        h.score = detail::beam_score(h.logprob, length, o.length_penalty);
        finished.push_back(std::move(h));
      } else {
        next.push_back(std::move(h));
      }
    }
    std::sort(finished.begin(), finished.end(), [](const auto& x, const auto& y) { return x.score > y.score; });
    if (finished.size() > o.width) finished.resize(o.width);
    live.swap(next);
    // Done when `width` are finished and the best live beam, scored now, cannot beat the worst.
    if (finished.size() == o.width && !live.empty()) {
      double best_live = -std::numeric_limits<double>::infinity();
      for (const auto& h : live) best_live = std::max(best_live, h.logprob);
      if (finished.back().score >= detail::beam_score(best_live, length, o.length_penalty)) live.clear();
    }
  }
  for (auto& h : live) {
    h.score = detail::beam_score(h.logprob, h.tokens.size(), o.length_penalty);
    finished.push_back(std::move(h));
  }
  std::stable_sort(finished.begin(), finished.end(), [](const auto& x, const auto& y) { return x.score > y.score; });
  if (finished.size() > o.width) finished.resize(o.width);
  return finished;
}

}  // namespace lmkit::gen
