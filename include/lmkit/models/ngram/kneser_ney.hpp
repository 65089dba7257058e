// Interpolated modified Kneser-Ney estimation, computed as KenLM's lmplz computes it (Heafield et
// al. 2013, "Scalable Modified Kneser-Ney Language Model Estimation"; Chen & Goodman 1998):
//
//  1. counts: n-grams of the highest order N in each sentence "<s> w1 .. wk </s>"; n-grams shorter
//     than N that start at <s> (a sentence's first words, which no word precedes) keep their count;
//  2. adjusted counts: for a lower-order n-gram not starting with <s>, the number of distinct words
//     seen to its left (its continuation count);
//  3. discounts D_n(1), D_n(2), D_n(3+) per order from the counts of adjusted counts t_1..t_4:
//     Y = t1 / (t1 + 2 t2),  D(k) = k - (k + 1) Y t_{k+1} / t_k;
//  4. p(w | h) = (a(h w) - D(a(h w))) / sum_x a(h x) + gamma(h) p(w | h'), with
//     gamma(h) = (D(1) N1(h .) + D(2) N2(h .) + D(3+) N3+(h .)) / sum_x a(h x), and unigrams
//     interpolated with the uniform distribution over the vocabulary (with <unk>, without <s>);
//  5. back-off of a context h: log10 gamma(h).
//
// <unk> gets only the uniform share of the unigram mass, as in lmplz. Everything is held in memory.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/ngram_table.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"
#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

/// "<s> w1 .. wk </s>" as ids (new words added to `vocab`) into `ids`. As KenLM's lmplz, the words
/// <s>, </s> and <unk> may not appear in the text (a format_error naming line `line_number`).
inline void sentence_ids(std::string_view line, std::size_t line_number, vocabulary& vocab, std::vector<word_id>& ids) {
  ids.assign(1, bos_id);
  for_each_word(line, [&](std::string_view w) {
    require<format_error>(w != "<s>" && w != "</s>" && w != "<unk>", "kneser_ney: line ", line_number, " contains ", w,
                          ", which is reserved (rename it before estimating)");
    ids.push_back(vocab.insert(w));
  });
  ids.push_back(eos_id);
}

/// The n-grams a sentence "<s> .. </s>" gives Kneser-Ney counting for order N: `count(span)` sees
/// each order-N n-gram, and each shorter one that starts at <s> (a sentence's first words, which no
/// word precedes).
template <class Count>
void for_each_counted_gram(std::span<const word_id> ids, std::size_t order, Count&& count) {
  for (std::size_t end = 1; end < ids.size(); ++end)
    count(end + 1 >= order ? ids.subspan(end + 1 - order, order) : ids.first(end + 1));
}

/// Counts n-grams from sentences for Kneser-Ney estimation of a model of order N.
class kneser_ney_counter {
 public:
  explicit kneser_ney_counter(std::size_t order) : order_(order), full_(order) {
    require<argument_error>(order >= 1 && order <= max_order, "kneser_ney_counter: order must be 1 to ", max_order,
                            ", got ", order);
    for (std::size_t n = 1; n <= order; ++n) sentence_starts_.emplace_back(n);
  }

  std::size_t order() const { return order_; }
  vocabulary& vocab() { return vocab_; }

  /// Adds one sentence of whitespace-separated words. As KenLM's lmplz, <s> and </s> are added, and
  /// the words <s>, </s> and <unk> may not appear in the text.
  void add_line(std::string_view line) {
    std::vector<word_id> ids;
    sentence_ids(line, lines_ + 1, vocab_, ids);
    add_sentence(ids);
    ++lines_;
  }

  /// Adds one sentence of ids that already starts with <s> and ends with </s>.
  void add_sentence(std::span<const word_id> ids) {
    for_each_counted_gram(ids, order_, [&](std::span<const word_id> gram) {
      if (gram.size() == order_) ++full_[gram];
      else ++sentence_starts_[gram.size() - 1][gram];
    });
  }

  std::size_t lines() const { return lines_; }

 private:
  friend ngram_model estimate_kneser_ney(kneser_ney_counter&& counter, const struct kneser_ney_options& options);

  std::size_t order_;
  vocabulary vocab_;
  ngram_table<std::uint64_t> full_;                          // order N
  std::vector<ngram_table<std::uint64_t>> sentence_starts_;  // [n-1]: <s>-initial n-grams, n < N
  std::size_t lines_ = 0;
};

/// The three discounts of one order.
struct kneser_ney_discounts {
  std::array<float, 4> amount{};  // [0] = 0, [1] = D(1), [2] = D(2), [3] = D(3+)
  float apply(std::uint64_t count) const { return static_cast<float>(count) - amount[std::min<std::uint64_t>(count, 3)]; }
};

/// Options of the estimate.
struct kneser_ney_options {
  /// Discounts D(1), D(2), D(3+) for an order whose counts-of-counts give none in range (a small
  /// vocabulary, such as characters, or artificial data): lmplz's --discount_fallback, whose
  /// default is 0.5 1 1.5. Unset, such an order is an error.
  std::optional<std::array<float, 3>> discount_fallback = std::nullopt;
};

/// Discounts from counts of adjusted counts t[1..4] (Chen & Goodman's equation 26), in float as lmplz.
inline kneser_ney_discounts compute_discounts(const std::array<std::uint64_t, 5>& t, std::size_t n,
                                              const kneser_ney_options& options = {}) {
  kneser_ney_discounts d;
  auto fall_back_or_fail = [&](auto&&... why) {
    require<argument_error>(options.discount_fallback.has_value(), "kneser_ney: ", why...);
    for (int k = 1; k <= 3; ++k) d.amount[k] = (*options.discount_fallback)[k - 1];
    return d;
  };
  for (int k = 1; k <= 3; ++k)  // t4 may be 0 (then D(3+) = 3), as in lmplz
    if (t[k] == 0)
      return fall_back_or_fail("no ", n, "-grams with adjusted count ", k,
                               ", so the discounts are undefined (too little or artificial data?)");
  const float y = static_cast<float>(t[1]) / static_cast<float>(t[1] + 2.0 * t[2]);
  for (int k = 1; k <= 3; ++k) {
    d.amount[k] = static_cast<float>(k) - static_cast<float>(k + 1) * y * static_cast<float>(t[k + 1]) / static_cast<float>(t[k]);
    if (!(d.amount[k] >= 0.0f && d.amount[k] <= static_cast<float>(k)))
      return fall_back_or_fail(n, "-gram discount for count ", k, " out of range: ", d.amount[k]);
  }
  return d;
}

/// Estimates the model from the counts (which it consumes).
inline ngram_model estimate_kneser_ney(kneser_ney_counter&& counter, const kneser_ney_options& options = {}) {
  const std::size_t order = counter.order_;
  // Adjusted counts per order, top down: order N keeps raw counts; a lower-order n-gram counts the
  // distinct words before it, unless it starts with <s>, which keeps its raw count.
  std::vector<ngram_table<std::uint64_t>> adjusted;
  for (std::size_t n = 1; n < order; ++n) adjusted.emplace_back(n);
  adjusted.push_back(std::move(counter.full_));
  for (std::size_t n = order - 1; n >= 1; --n) {
    auto& lower = adjusted[n - 1];
    const auto& higher = adjusted[n];
    lower.reserve(higher.size());
    for (std::size_t i = 0; i < higher.size(); ++i) {
      const auto suffix = higher.words(i).subspan(1);
      if (suffix[0] != bos_id) ++lower[suffix];
    }
    if (n >= 2) {
      const auto& starts = counter.sentence_starts_[n - 1];
      for (std::size_t i = 0; i < starts.size(); ++i) lower[starts.words(i)] += starts.value(i);
    }
  }
  // <unk> and <s> are unigrams with adjusted count 0.
  for (const word_id w : {unk_id, bos_id}) adjusted[0][std::array<word_id, 1>{w}] += 0;

  std::vector<kneser_ney_discounts> discounts(order);
  for (std::size_t n = 1; n <= order; ++n) {
    std::array<std::uint64_t, 5> t{};
    const auto& table = adjusted[n - 1];
    for (std::size_t i = 0; i < table.size(); ++i)
      if (table.value(i) >= 1 && table.value(i) <= 4) ++t[table.value(i)];
    discounts[n - 1] = compute_discounts(t, n, options);
  }

  // Per context (the n-gram less its last word): the sum of adjusted counts after it, and how
  // many words follow it with adjusted count 1, 2 and 3+. Order 1's one context is empty.
  struct context_sums {
    double denominator = 0;
    std::array<std::uint64_t, 4> with_count{};
  };
  std::vector<ngram_table<context_sums>> contexts;
  contexts.emplace_back(0);
  for (std::size_t n = 2; n <= order; ++n) contexts.emplace_back(n - 1);
  for (std::size_t n = 1; n <= order; ++n) {
    const auto& table = adjusted[n - 1];
    contexts[n - 1].reserve(n == 1 ? 1 : adjusted[n - 2].size());
    for (std::size_t i = 0; i < table.size(); ++i) {
      const auto words = table.words(i);
      context_sums& c = contexts[n - 1][words.first(n - 1)];
      c.denominator += static_cast<double>(table.value(i));
      if (table.value(i) > 0) ++c.with_count[std::min<std::uint64_t>(table.value(i), 3)];
    }
  }
  auto gamma = [&](std::size_t n, const context_sums& c) {
    const auto& d = discounts[n - 1];
    return (d.amount[1] * c.with_count[1] + d.amount[2] * c.with_count[2] + d.amount[3] * c.with_count[3]) / c.denominator;
  };

  // Interpolated probabilities, lower orders first (each n-gram needs its suffix's); the model's
  // tables are filled in the same pass, with back-offs once the next order's contexts are known.
  ngram_model model(order);
  model.vocab() = std::move(counter.vocab_);
  std::vector<std::vector<double>> probability(order);  // parallel to adjusted[n - 1]
  const double uniform = 1.0 / static_cast<double>(adjusted[0].size() - 1);  // the vocabulary less <s>
  for (std::size_t n = 1; n <= order; ++n) {
    const auto& table = adjusted[n - 1];
    auto& out = model.table(n);
    out.reserve(table.size());
    probability[n - 1].resize(table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
      const auto words = table.words(i);
      const context_sums& c = *contexts[n - 1].find(words.first(n - 1));
      // Every lower-order suffix exists by construction (adjusted counts came from suffixes).
      const double lower = n == 1 ? uniform : probability[n - 2][adjusted[n - 2].index_of(words.subspan(1))];
      const double p = discounts[n - 1].apply(table.value(i)) / c.denominator + gamma(n, c) * lower;
      probability[n - 1][i] = p;
      ngram_entry e;
      e.log_prob = static_cast<float>(std::log10(p));
      if (n < order)
        if (const context_sums* next = contexts[n].find(words)) e.log_backoff = static_cast<float>(std::log10(gamma(n + 1, *next)));
      out[words] = e;
    }
  }
  // <s> is never predicted; lmplz writes its probability as log10 1.
  model.table(1).find(std::array<word_id, 1>{bos_id})->log_prob = 0.0f;
  return model;
}

/// Reads sentences, one per line, and estimates an interpolated modified Kneser-Ney model.
inline ngram_model estimate_kneser_ney(std::istream& lines, std::size_t order, const kneser_ney_options& options = {}) {
  kneser_ney_counter counter(order);
  std::string line;
  while (std::getline(lines, line)) counter.add_line(line);
  return estimate_kneser_ney(std::move(counter), options);
}

}  // namespace lmkit::ngram
