// Speculative decoding (Leviathan et al. 2023, Chen et al. 2023): a cheap draft model proposes k
// tokens one at a time, the target checks all of them in one batched pass, and the standard rule
// keeps the target's distribution exactly:
//
//   draft token x_i ~ q_i;  accept with probability min(1, p_i(x_i) / q_i(x_i));
//   at the first rejection, draw from norm(max(0, p_i - q_i)) and end the round;
//   if all k are accepted, draw one more token from the target's p_k (a free one).
//
// p and q are the distributions the sampler chain leaves (gen::sampler_config: penalties, top-k,
// top-p, min-p, temperature ...), applied to each model's scores with the history at that
// position. At temperature 0 both are a point mass on the best token, so a draft token is kept
// exactly when it is the target's argmax and the output is the target's greedy output (the
// target's scores from a batched pass equal the one-token ones up to rounding: a near tie could
// flip only where the margin is ~1e-6).
//
// The draws take a different path through the random stream than gen::generate's, so a sampled
// run is a different sample from the same distribution, not the same tokens.
//
// Both models are rewound (truncate) after a rejection. Each keeps all tokens but the last fed, so
// a round is one target call: the last accepted token followed by the k drafts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/generate.hpp"
#include "lmkit/gen/language_model.hpp"
#include "lmkit/gen/sampler_part.hpp"
#include "lmkit/gen/text_stream.hpp"

namespace lmkit::gen {

struct speculative_options {
  std::size_t max_tokens = 128;
  std::size_t draft_tokens = 4;  // k: tokens proposed per round
  std::vector<token_id> stop_tokens{};
  std::vector<std::string> stop_strings{};          // as generate's: need `decode`
  detokenizer decode{};                             // token ids to text
  std::function<void(std::string_view)> on_text{};  // each new piece of text (needs decode)
};

struct speculative_result {
  std::vector<token_id> tokens;  // generated, without a stop token
  std::string text;              // their text (empty without decode; ends before a stop string)
  stop_reason reason = stop_reason::max_tokens;
  std::size_t drafted = 0;   // draft tokens proposed
  std::size_t accepted = 0;  // of those, kept
  std::size_t rounds = 0;    // target passes
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0.0; }
};

/// Something that narrows / reweighs candidates: both chains (their `apply`), or any sampler part.
template <class C>
concept candidate_filter = requires(const C& c, candidates& work, const sample_context& ctx) { c.apply(work, ctx); };

/// The distribution `chain` leaves over the vocabulary after `scores` and `history`, dense.
template <candidate_filter Chain>
void chain_distribution(const Chain& chain, std::span<const float> scores, std::span<const token_id> history, philox& rng,
                        candidates& work, std::vector<double>& p) {
  work.reset(scores);
  chain.apply(work, sample_context{history, rng});
  const std::span<candidate> items = work.items();
  require<argument_error>(!items.empty(), "speculative: every token is banned or has a score of -inf");
  work.normalise();
  p.assign(scores.size(), 0.0);
  double total = 0.0;
  for (const candidate& c : items) total += c.prob;
  for (const candidate& c : items) p[c.id] = c.prob / total;
}

namespace detail {

/// One draw from a dense distribution (weights summing to `total`).
inline token_id draw_dense(std::span<const double> p, double total, double u) {
  const double target = u * total;
  double cumulative = 0.0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0.0) continue;
    last = i;
    cumulative += p[i];
    if (target < cumulative) return static_cast<token_id>(i);
  }
  return static_cast<token_id>(last);
}

}  // namespace detail

template <language_model Target, language_model Draft, candidate_filter Chain>
speculative_result speculative_generate(Target& target, Draft& draft, std::span<const token_id> prompt, const Chain& chain,
                                        philox& rng, const speculative_options& o = {}) {
  const std::size_t vocab = target.vocab_size();
  require<argument_error>(!prompt.empty(), "speculative_generate: the prompt is empty");
  require<argument_error>(o.draft_tokens >= 1, "speculative_generate: draft_tokens must be at least 1");
  require<argument_error>(draft.vocab_size() == vocab, "speculative_generate: the draft's vocabulary of ", draft.vocab_size(),
                          " tokens differs from the target's ", vocab);
  for (const auto& [name, context] : {std::pair<const char*, std::size_t>{"target", target.context_length()},
                                      std::pair<const char*, std::size_t>{"draft", draft.context_length()}})
    if (context > 0 && prompt.size() + o.max_tokens > context)
      throw argument_error(lmkit::detail::concat("speculative_generate: the prompt's ", prompt.size(), " tokens + max_tokens ",
                                                 o.max_tokens, " = ", prompt.size() + o.max_tokens, " exceed the ", name,
                                                 "'s context of ", context, " positions"));

  speculative_result out;
  std::vector<token_id> history(prompt.begin(), prompt.end());
  candidates work;
  std::vector<std::vector<double>> q(o.draft_tokens), p(o.draft_tokens + 1);
  std::vector<token_id> drafts, verify;
  std::vector<float> target_scores;

  // Each model holds every token but the last (the round feeds it, with what follows).
  target.truncate(0);
  draft.truncate(0);
  if (prompt.size() > 1) {
    target.append(prompt.first(prompt.size() - 1));
    draft.append(prompt.first(prompt.size() - 1));
  }
  auto is_stop = [&](token_id t) { return std::find(o.stop_tokens.begin(), o.stop_tokens.end(), t) != o.stop_tokens.end(); };
  require<argument_error>(o.stop_strings.empty() || o.decode, "speculative_generate: stop strings need a decode function");
  require<argument_error>(!o.on_text || o.decode, "speculative_generate: streaming text needs a decode function");
  std::optional<text_stream> stream;  // the same text, held back and cut as generate's
  if (o.decode) stream.emplace(o.decode, prompt, o.stop_strings);

  while (out.tokens.size() < o.max_tokens) {
    const std::size_t n = history.size();
    const std::size_t k = std::min(o.draft_tokens, o.max_tokens - out.tokens.size());
    // Draft k tokens: catch up on the tokens the draft has not run, then one at a time.
    drafts.clear();
    std::span<const float> scores = draft.append(std::span<const token_id>(history).subspan(draft.position()));
    for (std::size_t i = 0; i < k; ++i) {
      chain_distribution(chain, scores, history, rng, work, q[i]);
      const token_id x = detail::draw_dense(q[i], 1.0, rng.uniform_double());
      drafts.push_back(x);
      history.push_back(x);
      if (i + 1 < k) scores = draft.append(std::span<const token_id>(&x, 1));
    }
    history.resize(n);

    // Verify: the target runs the last token and the k drafts in one pass.
    verify.assign(history.begin() + static_cast<std::ptrdiff_t>(target.position()), history.end());
    const std::size_t fed = verify.size();
    verify.insert(verify.end(), drafts.begin(), drafts.end());
    target_scores.resize(verify.size() * vocab);
    append_all(target, verify, target_scores);
    ++out.rounds;
    out.drafted += k;

    // Accept or reject, left to right. p_i comes from the row after token n-1+i.
    std::size_t accepted = 0;
    token_id extra = 0;
    for (;; ++accepted) {
      const std::span<const float> row(target_scores.data() + (fed - 1 + accepted) * vocab, vocab);
      chain_distribution(chain, row, history, rng, work, p[accepted]);
      if (accepted == k) {  // all accepted: one more from the target
        extra = detail::draw_dense(p[k], 1.0, rng.uniform_double());
        break;
      }
      const token_id x = drafts[accepted];
      if (rng.uniform_double() * q[accepted][x] < p[accepted][x]) {
        history.push_back(x);
        continue;
      }
      // rejected: from the residual max(0, p - q), normalised
      std::vector<double>& residual = p[accepted];
      double total = 0.0;
      for (std::size_t v = 0; v < vocab; ++v) {
        residual[v] = std::max(0.0, residual[v] - q[accepted][v]);
        total += residual[v];
      }
      if (total <= 0.0) {  // p == q up to rounding: p itself
        chain_distribution(chain, row, history, rng, work, residual);
        total = 1.0;
      }
      extra = detail::draw_dense(residual, total, rng.uniform_double());
      break;
    }
    out.accepted += accepted;
    history.push_back(extra);

    // Hand out the new tokens (a stop token, a stop string or max_tokens may end the round early).
    bool stopped = false;
    for (std::size_t i = n; i < history.size(); ++i) {
      if (is_stop(history[i])) {
        out.reason = stop_reason::stop_token;
        stopped = true;
        break;
      }
      out.tokens.push_back(history[i]);
      if (stream) {
        const std::string piece = stream->push(history[i]);
        if (o.on_text && !piece.empty()) o.on_text(piece);
        if (stream->stopped()) {
          out.reason = stop_reason::stop_string;
          stopped = true;
          break;
        }
      }
      if (out.tokens.size() == o.max_tokens) break;
    }
    if (stopped || out.tokens.size() >= o.max_tokens) break;

    // Rewind both to every token but the last.
    const std::size_t keep = history.size() - 1;
    if (target.position() > keep) target.truncate(keep);
    if (draft.position() > keep) draft.truncate(keep);
  }
  if (stream) {
    const std::string rest = stream->finish();
    if (o.on_text && !rest.empty()) o.on_text(rest);
    out.text = stream->text();
  }
  return out;
}

}  // namespace lmkit::gen
