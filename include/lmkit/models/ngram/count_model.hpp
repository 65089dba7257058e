// Count-based n-gram scoring without Kneser-Ney, for comparison with it: add-k (Laplace for k = 1)
// and stupid back-off (Brants et al. 2007). The counts of every order are kept; add-k is a proper
// distribution over the vocabulary, stupid back-off is a score that does not sum to one (so its
// "perplexity" is only comparable with itself).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"
#include "lmkit/models/ngram/ngram_table.hpp"
#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

/// How a count_model turns counts into a score.
struct add_k {
  double k = 1.0;  // 1: Laplace
};
struct stupid_backoff {
  double alpha = 0.4;  // the factor per order backed off
};

class count_model {
 public:
  explicit count_model(std::size_t order) {
    require<argument_error>(order >= 1 && order <= max_order, "count_model: order must be 1 to ", max_order);
    for (std::size_t n = 1; n <= order; ++n) counts_.emplace_back(n), context_counts_.emplace_back(n);
  }

  std::size_t order() const { return counts_.size(); }
  const vocabulary& vocab() const { return vocab_; }

  /// Counts the n-grams of every order in "<s> line </s>" (n-grams may start at <s>, never end there).
  void add_line(std::string_view line) {
    std::vector<word_id> ids{bos_id};
    for_each_word(line, [&](std::string_view w) { ids.push_back(vocab_.insert(w)); });
    ids.push_back(eos_id);
    for (std::size_t end = 1; end < ids.size(); ++end) {
      ++tokens_;
      for (std::size_t n = 1; n <= order() && n <= end + 1; ++n) {
        const std::span<const word_id> gram(ids.data() + end + 1 - n, n);
        ++counts_[n - 1][gram];
        if (n > 1) ++context_counts_[n - 2][gram.first(n - 1)];
      }
    }
  }

  /// log10 p(word | context) = log10 (c(context word) + k) / (c(context) + k V), V the vocabulary
  /// without <s>; the context is the last order-1 words given.
  double log_prob(std::span<const word_id> context, word_id word, add_k smoothing) const {
    context = last(context);
    const double vocabulary_size = static_cast<double>(vocab_.size() - 1);
    const double joint = count(context, word), given = context.empty() ? static_cast<double>(tokens_) : context_count(context);
    return std::log10((joint + smoothing.k) / (given + smoothing.k * vocabulary_size));
  }

  /// log10 S(word | context): c(context word) / c(context) if seen, else alpha S(word | shorter
  /// context); unigrams c(word) / tokens. An unseen word scores as if seen once (so the log is finite).
  double log_prob(std::span<const word_id> context, word_id word, stupid_backoff smoothing) const {
    context = last(context);
    double penalty = 0.0;
    for (std::size_t skip = 0; skip < context.size(); ++skip, penalty += std::log10(smoothing.alpha)) {
      const auto c = context.subspan(skip);
      if (const double joint = count(c, word); joint > 0) return penalty + std::log10(joint / context_count(c));
    }
    return penalty + std::log10(std::max(1.0, count({}, word)) / static_cast<double>(tokens_));
  }

  /// Scores "line </s>" after <s> with either smoothing; OOV words are <unk> (count 0).
  template <class Smoothing>
  text_score score_sentence(std::string_view line, Smoothing smoothing) const {
    text_score s;
    s.sentences = 1;
    std::vector<word_id> history{bos_id};
    auto add = [&](word_id id) {
      s.add_token(log_prob(history, id, smoothing), id == unk_id);
      history.push_back(id);
    };
    for_each_word(line, [&](std::string_view w) { add(vocab_.find(w)); });
    add(eos_id);
    return s;
  }

  /// How often `word` followed `context` ("after 'lunch' came 'pizza' 12 times"); the context is
  /// at most order - 1 words, empty for a word's own count.
  double count(std::span<const word_id> context, word_id word) const {
    require<argument_error>(context.size() < order(), "count_model: a context of ", context.size(),
                            " words in a model of order ", order());
    std::array<word_id, max_order> gram;
    std::copy(context.begin(), context.end(), gram.begin());
    gram[context.size()] = word;
    const auto* c = counts_[context.size()].find({gram.data(), context.size() + 1});
    return c ? static_cast<double>(*c) : 0.0;
  }

 private:
  std::span<const word_id> last(std::span<const word_id> context) const {
    return context.size() < order() ? context : context.last(order() - 1);
  }
  double context_count(std::span<const word_id> context) const {
    const auto* c = context_counts_[context.size() - 1].find(context);
    return c ? static_cast<double>(*c) : 0.0;
  }

  vocabulary vocab_;
  std::vector<ngram_table<std::uint64_t>> counts_;          // [n-1]: n-grams
  std::vector<ngram_table<std::uint64_t>> context_counts_;  // [n-1]: n-grams followed by a word
  std::uint64_t tokens_ = 0;                                 // predicted tokens (words and </s>)
};

}  // namespace lmkit::ngram
