// A draft for speculative decoding that is not a model: it proposes the token that followed the
// latest earlier occurrence of the text's last few tokens ("prompt lookup decoding", Saxena 2023;
// llama.cpp's lookup decoding). On text that repeats itself — code being edited, a quoted passage,
// a model caught in a loop — most proposals are right, and a proposal costs a scan of the history,
// not a forward pass.
//
// It satisfies gen::language_model: the scores are one-hot (0 for the proposal, -inf elsewhere), a
// point mass q, for which speculative_generate's rule keeps the target's distribution exactly.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"

namespace lmkit::gen {

class prompt_lookup_draft {
 public:
  /// Matches the last `max_ngram` tokens first, then shorter suffixes down to `min_ngram`.
  explicit prompt_lookup_draft(std::size_t vocab, std::size_t max_ngram = 3, std::size_t min_ngram = 1)
      : vocab_(vocab), max_ngram_(max_ngram), min_ngram_(min_ngram),
        scores_(vocab, -std::numeric_limits<float>::infinity()) {
    require<argument_error>(vocab > 0, "prompt_lookup_draft: the vocabulary is empty");
    require<argument_error>(min_ngram >= 1 && min_ngram <= max_ngram, "prompt_lookup_draft: n-gram lengths ", min_ngram,
                            "..", max_ngram, " are not a range starting at 1 or more");
  }

  std::size_t vocab_size() const { return vocab_; }
  std::size_t context_length() const { return 0; }
  std::size_t position() const { return history_.size(); }

  /// Adds `tokens` to the history; returns one-hot scores on the proposed next token.
  std::span<const float> append(std::span<const token_id> tokens) {
    require<argument_error>(!tokens.empty(), "prompt_lookup_draft: no tokens to append");
    for (std::size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] >= vocab_)
        throw argument_error(lmkit::detail::concat("prompt_lookup_draft: token ", tokens[i], " at index ", i,
                                                   " is outside the vocabulary of ", vocab_));
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    scores_[hot_] = -std::numeric_limits<float>::infinity();
    hot_ = propose();
    scores_[hot_] = 0.0f;
    return scores_;
  }

  void truncate(std::size_t n) {
    require<argument_error>(n <= history_.size(), "prompt_lookup_draft: cannot truncate ", history_.size(),
                            " tokens to ", n);
    history_.resize(n);
  }

  /// Proposals that came from a match (the others repeat the last token).
  std::size_t matches() const { return matches_; }

 private:
  /// The token after the latest earlier occurrence of the longest matching suffix; without one,
  /// the last token again (a guess that costs one rejected draft).
  token_id propose() {
    const std::size_t size = history_.size();
    for (std::size_t n = std::min(max_ngram_, size - 1); n >= min_ngram_ && n > 0; --n) {
      const token_id* suffix = history_.data() + size - n;
      // Latest first: the most recent context predicts best. `start + n < size` leaves a next token.
      for (std::size_t start = size - n; start-- > 0;)
        if (std::equal(suffix, suffix + n, history_.data() + start)) {
          ++matches_;
          return history_[start + n];
        }
    }
    return history_.back();
  }

  std::size_t vocab_, max_ngram_, min_ngram_;
  std::vector<token_id> history_;
  std::vector<float> scores_;
  token_id hot_ = 0;
  std::size_t matches_ = 0;
};

}  // namespace lmkit::gen
