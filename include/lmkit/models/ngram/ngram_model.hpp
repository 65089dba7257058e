// A back-off n-gram model: for each order, the n-grams with their log10 probability and log10
// back-off weight, as an ARPA file holds them; scoring with a carried state, as KenLM's query does.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/ngram_table.hpp"
#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

struct ngram_entry {
  float log_prob = 0.0f;     // log10 p(last word | the words before it)
  float log_backoff = 0.0f;  // log10 of the weight given to lower orders after this context
  friend bool operator==(const ngram_entry&, const ngram_entry&) = default;
};

/// The longest order a model may have (the state is a fixed array).
inline constexpr std::size_t max_order = 16;

/// What a model remembers between two calls of `score`, as KenLM's state: the last words (at most
/// order-1, and only as many as form n-grams the model has), oldest first, and the back-off weight
/// of each of those suffixes, so that scoring the next word needs no back-off look-ups. Room for
/// `Capacity` words: max_order for a model whose order is chosen at run time, N - 1 for ngram<N>.
template <std::size_t Capacity>
struct basic_ngram_state {
  static constexpr std::size_t capacity = Capacity;
  std::array<word_id, Capacity> words{};
  std::array<float, Capacity> backoff{};  // [k]: log10 back-off of the last k+1 words as a context
  std::size_t length = 0;
};
using ngram_state = basic_ngram_state<max_order>;

/// What scoring one word gives: its log10 probability and the length of the n-gram that matched.
struct word_score {
  float log_prob = 0.0f;
  std::size_t matched_order = 0;
};

/// Totals over a text, with perplexity as KenLM's query defines it: OOV words count as tokens
/// (with <unk>'s probability) in the first figure and are left out of the second; </s> is a token.
struct text_score {
  double total_log_prob = 0.0;  // log10, over every token including OOVs and </s>
  double oov_log_prob = 0.0;    // the part of the total that OOV words contributed
  std::size_t tokens = 0;
  std::size_t oovs = 0;
  std::size_t sentences = 0;

  /// Counts one scored token.
  void add_token(double log_prob, bool oov) {
    total_log_prob += log_prob;
    ++tokens;
    if (oov) ++oovs, oov_log_prob += log_prob;
  }

  double perplexity() const { return std::pow(10.0, -total_log_prob / static_cast<double>(tokens)); }
  double perplexity_excluding_oovs() const {
    return std::pow(10.0, -(total_log_prob - oov_log_prob) / static_cast<double>(tokens - oovs));
  }
  text_score& operator+=(const text_score& o) {
    total_log_prob += o.total_log_prob, oov_log_prob += o.oov_log_prob;
    tokens += o.tokens, oovs += o.oovs, sentences += o.sentences;
    return *this;
  }
};

class ngram_model {
 public:
  explicit ngram_model(std::size_t order) {
    require<argument_error>(order >= 1 && order <= max_order, "ngram_model: order must be 1 to ", max_order, ", got ",
                            order);
    for (std::size_t n = 1; n <= order; ++n) tables_.emplace_back(n);
  }

  /// A model over tables that may view memory owned by `storage` (a mapped file), kept alive with it.
  ngram_model(vocabulary vocab, std::vector<ngram_table<ngram_entry>> tables, std::shared_ptr<const void> storage)
      : vocab_(std::move(vocab)), tables_(std::move(tables)), storage_(std::move(storage)) {
    require<argument_error>(!tables_.empty() && tables_.size() <= max_order, "ngram_model: order must be 1 to ", max_order);
    for (std::size_t n = 1; n <= tables_.size(); ++n)
      require<argument_error>(tables_[n - 1].order() == n, "ngram_model: table ", n, " holds ", tables_[n - 1].order(), "-grams");
  }

  std::size_t order() const { return tables_.size(); }
  vocabulary& vocab() { return vocab_; }
  const vocabulary& vocab() const { return vocab_; }

  /// The n-grams of order n (1 <= n <= order()).
  const ngram_table<ngram_entry>& table(std::size_t n) const { return tables_.at(n - 1); }
  ngram_table<ngram_entry>& table(std::size_t n) { return tables_.at(n - 1); }

  void set(std::span<const word_id> words, ngram_entry entry) {
    require<argument_error>(!words.empty() && words.size() <= order(), "ngram_model::set: an n-gram of ", words.size(),
                            " words in a model of order ", order());
    tables_[words.size() - 1][words] = entry;
  }

  const ngram_entry* find(std::span<const word_id> words) const {
    if (words.empty() || words.size() > order()) return nullptr;
    return tables_[words.size() - 1].find(words);
  }

  /// The state at the start of a sentence: the context <s>.
  template <std::size_t Capacity = max_order>
  basic_ngram_state<Capacity> begin_sentence() const {
    check_capacity(Capacity);
    basic_ngram_state<Capacity> s;
    if constexpr (Capacity > 0) {
      if (order() > 1) {
        s.words[0] = bos_id;
        const ngram_entry* bos = find(std::array<word_id, 1>{bos_id});
        s.backoff[0] = bos ? bos->log_backoff : 0.0f;
        s.length = 1;
      }
    }
    return s;
  }

  /// log10 p(word | state), backing off through the contexts that are missing; moves the state on.
  /// N-grams are looked up from the shortest (the unigram) up and the search stops at the first
  /// one missing: every suffix of an n-gram in the model is in the model too.
  template <std::size_t Capacity>
  word_score score(basic_ngram_state<Capacity>& state, word_id word) const {
    if constexpr (Capacity < max_order) check_capacity(Capacity);
    const std::size_t context = state.length;
    std::array<word_id, Capacity + 1> gram;  // the context's words, then `word`
    std::copy(state.words.begin(), state.words.begin() + context, gram.begin());
    gram[context] = word;
    std::array<float, Capacity + 1> next_backoff;
    const ngram_entry* unigram = tables_[0].find({gram.data() + context, 1});
    require<format_error>(unigram != nullptr, "ngram_model: word id ", word, " has no unigram (and the model no <unk>)");
    word_score result{unigram->log_prob, 1};
    next_backoff[0] = unigram->log_backoff;
    for (std::size_t j = 1; j <= context && j < order(); ++j) {
      const ngram_entry* e = tables_[j].find({gram.data() + context - j, j + 1});
      if (!e) break;
      result.log_prob = e->log_prob;
      result.matched_order = j + 1;
      next_backoff[j] = e->log_backoff;
    }
    // The contexts longer than the match were backed off from.
    for (std::size_t k = result.matched_order - 1; k < context; ++k) result.log_prob += state.backoff[k];
    const std::size_t keep = std::min(result.matched_order, order() - 1);
    std::copy(gram.begin() + (context + 1 - keep), gram.begin() + context + 1, state.words.begin());
    std::copy(next_backoff.begin(), next_backoff.begin() + keep, state.backoff.begin());
    state.length = keep;
    return result;
  }

  /// p(v | state) for every word id v (a distribution to sample the next word from): 0 for <s>,
  /// which never follows, and for <unk> unless `include_unk`. Sums to one up to rounding (less the
  /// mass of what is left out). `p` must hold vocab().size() values.
  void next_word_probabilities(const ngram_state& state, std::span<double> p, bool include_unk = false) const {
    require<argument_error>(p.size() == vocab_.size(), "ngram_model: ", p.size(), " slots for a vocabulary of ",
                            vocab_.size());
    for (word_id v = 0; v < p.size(); ++v) {
      if (v == bos_id || (v == unk_id && !include_unk)) {
        p[v] = 0.0;
        continue;
      }
      ngram_state copy = state;
      p[v] = std::pow(10.0, static_cast<double>(score(copy, v).log_prob));
    }
  }

  /// One draw of the next word from p(. | state) (never <s> or <unk>), with a uniform u in [0, 1);
  /// `scratch` holds the distribution (reused between calls). </s> ends a sentence.
  word_id sample_next_word(const ngram_state& state, double u, std::vector<double>& scratch) const {
    scratch.resize(vocab_.size());
    next_word_probabilities(state, scratch);
    double total = 0;
    for (double x : scratch) total += x;
    u *= total;
    for (word_id v = 0; v < scratch.size(); ++v)
      if ((u -= scratch[v]) < 0 && scratch[v] > 0) return v;
    return eos_id;  // rounding left u above the last sum
  }

  /// Scores one sentence (words separated by whitespace) and </s>; `each_word(word, id, score)`
  /// sees every token. The state has room for `Capacity` words (see basic_ngram_state).
  template <std::size_t Capacity = max_order, class EachWord>
  text_score score_sentence(std::string_view line, EachWord&& each_word) const {
    text_score s;
    s.sentences = 1;
    auto state = begin_sentence<Capacity>();
    auto add = [&](std::string_view text, word_id id) {
      const word_score ws = score(state, id);
      s.add_token(ws.log_prob, id == unk_id);
      each_word(text, id, ws);
    };
    for_each_word(line, [&](std::string_view w) { add(w, vocab_.find(w)); });
    add("</s>", eos_id);
    return s;
  }
  template <std::size_t Capacity = max_order>
  text_score score_sentence(std::string_view line) const {
    return score_sentence<Capacity>(line, [](std::string_view, word_id, const word_score&) {});
  }

 private:
  void check_capacity(std::size_t capacity) const {
    require<argument_error>(capacity + 1 >= order(), "ngram_model: a state for ", capacity + 1,
                            "-gram models used with a model of order ", order());
  }

  vocabulary vocab_;
  std::vector<ngram_table<ngram_entry>> tables_;
  std::shared_ptr<const void> storage_;  // what mapped tables point into, if anything
};

}  // namespace lmkit::ngram
