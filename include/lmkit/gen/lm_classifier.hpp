// Classification by a language model's judgement: among labels, the one whose text the model finds
// most likely right after the prompt. Each label's score is the sum of its tokens' log-probabilities
// (log_softmax of the model's scores) given the prompt, optionally divided by its token count
// (length-normalised, so that a label of many tokens is not punished for its length). Zero-shot, or
// with k worked examples in the prompt (gen::few_shot_prompt).
//
// The prompt is run once: each label rewinds the model to the end of what it shares with the
// prompt (truncate) and runs its own tokens in one batched call.
//
// In text: a label is tokenised together with the prompt (prompt + " positive"), and its tokens are
// those after the longest prefix shared with the prompt's own tokens, so that a tokenizer that
// merges across the boundary is scored on what it really produces.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/gen/language_model.hpp"
#include "lmkit/gen/logprobs.hpp"

namespace lmkit::gen {

/// Log-likelihoods of continuations after contexts, with a model that keeps what it already ran.
template <language_model M>
class continuation_scorer {
 public:
  explicit continuation_scorer(M& model) : model_(&model) { model_->truncate(0); }

  /// sum over the continuation's tokens of log p(token | context, the tokens before it).
  double logprob(std::span<const token_id> context, std::span<const token_id> continuation) {
    require<argument_error>(!context.empty(), "continuation_scorer: the context is empty");
    require<argument_error>(!continuation.empty(), "continuation_scorer: the continuation is empty");
    sequence_.assign(context.begin(), context.end());
    sequence_.insert(sequence_.end(), continuation.begin(), continuation.end());
    sequence_.pop_back();  // the last token is scored, never run
    std::size_t keep = 0;
    while (keep < held_.size() && keep < sequence_.size() && held_[keep] == sequence_[keep]) ++keep;
    keep = std::min(keep, context.size() - 1);  // run at least the context's last token
    keep = std::min(keep, model_->position());
    model_->truncate(keep);
    const std::size_t vocab = model_->vocab_size();
    const std::span<const token_id> run(sequence_.data() + keep, sequence_.size() - keep);
    rows_.resize(run.size() * vocab);
    append_all(*model_, run, rows_);
    held_ = sequence_;
    double sum = 0.0;
    lp_.resize(vocab);
    for (std::size_t j = 0; j < continuation.size(); ++j) {
      const std::size_t after = context.size() + j - 1;  // index of the token before continuation[j]
      log_softmax(std::span<const float>(rows_.data() + (after - keep) * vocab, vocab), lp_);
      require<argument_error>(continuation[j] < vocab, "continuation_scorer: token ", continuation[j],
                              " is outside the vocabulary of ", vocab);
      sum += lp_[continuation[j]];
    }
    return sum;
  }

 private:
  M* model_;
  std::vector<token_id> held_, sequence_;
  std::vector<float> rows_, lp_;
};

struct label_scores {
  std::size_t best = 0;              // index of the chosen label
  std::vector<double> logprob;       // per label: sum of its tokens' log-probabilities
  std::vector<std::size_t> tokens;   // per label: its token count
  std::vector<double> score;         // what was compared (logprob, or logprob / tokens)
};

/// Text to token ids (a tokenizer's encode, with BOS if the model expects one).
using tokenize_fn = std::function<std::vector<token_id>(std::string_view)>;

/// The label whose text is the likeliest continuation of `prompt` (ties: the first label).
template <language_model M>
label_scores classify_by_likelihood(M& model, const tokenize_fn& encode, std::string_view prompt,
                                    std::span<const std::string> labels, bool length_normalise = false) {
  require<argument_error>(!labels.empty(), "classify: no labels");
  continuation_scorer<M> scorer(model);
  const std::vector<token_id> prompt_tokens = encode(prompt);
  label_scores r;
  double best = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::vector<token_id> all = encode(std::string(prompt) + labels[i]);
    std::size_t shared = 0;
    while (shared < all.size() && shared < prompt_tokens.size() && all[shared] == prompt_tokens[shared]) ++shared;
    require<argument_error>(shared >= 1, "classify: the prompt and label '", labels[i], "' share no first token (add BOS)");
    require<argument_error>(shared < all.size(), "classify: label '", labels[i], "' adds no token to the prompt");
    const std::span<const token_id> whole(all);
    const double lp = scorer.logprob(whole.first(shared), whole.subspan(shared));
    const std::size_t n = all.size() - shared;
    r.logprob.push_back(lp);
    r.tokens.push_back(n);
    r.score.push_back(length_normalise ? lp / static_cast<double>(n) : lp);
    if (r.score.back() > best) best = r.score.back(), r.best = i;
  }
  return r;
}

}  // namespace lmkit::gen
