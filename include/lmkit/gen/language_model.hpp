// What the generation loop needs from a model, whatever its family: feed tokens, get the scores of
// the next token, rewind. And the adapters that make each of lmkit's families one.
//
//   template <gen::language_model M> ...
//     m.vocab_size()        tokens the scores cover
//     m.context_length()    positions the model can hold, 0 for no limit (n-gram, LSTM)
//     m.position()          tokens fed so far
//     m.append(tokens)      feeds tokens (at least one); returns the scores of the next token:
//                           logits, or log-probabilities (the n-gram) -- the samplers and the
//                           log-softmax of gen/logprobs.hpp take either. Valid until the next call.
//     m.truncate(n)         forgets every token from position n on (n <= position())
//   optionally (gen::batched_language_model)
//     m.append(tokens, out) feeds tokens and writes the scores after each one: [tokens x vocab]
//                           (speculative decoding verifies a draft this way in one pass)
//
// A full context is an lmkit::argument_error from append, never a silent overwrite.
//
// Adapters, one per family:
//   gen::decoder_lm   a pretrained Llama / GPT-2 (models::decoder_session): KV cache, truncate is free
//   gen::gpt_lm       a GPT trained here (models::gpt<...>): its blocks' infer with a KV cache (the
//                     same layers as training); truncate is free
//   gen::lstm_lm_adapter  an LSTM LM (models::lstm_lm<...>): carried state; truncate(n) resets the
//                     state and re-feeds the first n tokens (O(n)); truncate(position()) costs nothing
//   gen::ngram_lm     a back-off n-gram model (ngram::ngram_model) over its words (token id = word
//                     id) or over token ids (ngram_lm::over_token_ids, a model built by
//                     gen::estimate_token_ngram); the scores are natural-log probabilities;
//                     truncate(n) re-scores the last order-1 tokens from an empty state, which
//                     gives exactly the state the whole history gives.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/models/decoder.hpp"
#include "lmkit/models/gpt.hpp"
#include "lmkit/models/lstm_lm.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"

namespace lmkit::gen {

template <class M>
concept language_model = requires(M& m, const M& cm, std::span<const token_id> tokens, std::size_t n) {
  { cm.vocab_size() } -> std::convertible_to<std::size_t>;
  { cm.context_length() } -> std::convertible_to<std::size_t>;
  { cm.position() } -> std::convertible_to<std::size_t>;
  { m.append(tokens) } -> std::convertible_to<std::span<const float>>;
  m.truncate(n);
};

/// A model that also gives the scores after every token of one append.
template <class M>
concept batched_language_model =
    language_model<M> && requires(M& m, std::span<const token_id> tokens, std::span<float> out) { m.append(tokens, out); };

/// Feeds `tokens` and writes the scores after each one into `out` [tokens x vocab]: in one call
/// when the model can, else token by token.
template <language_model M>
void append_all(M& model, std::span<const token_id> tokens, std::span<float> out) {
  const std::size_t vocab = model.vocab_size();
  require<argument_error>(out.size() == tokens.size() * vocab, "append_all: ", out.size(), " slots for ", tokens.size(),
                          " tokens x ", vocab);
  if constexpr (batched_language_model<M>) {
    model.append(tokens, out);
  } else {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::span<const float> s = model.append(tokens.subspan(i, 1));
      std::copy(s.begin(), s.end(), out.begin() + static_cast<std::ptrdiff_t>(i * vocab));
    }
  }
}

namespace detail {

inline void check_tokens(std::span<const token_id> tokens, std::size_t vocab, const char* who) {
  require<argument_error>(!tokens.empty(), who, ": no tokens to append");
  for (std::size_t i = 0; i < tokens.size(); ++i)
    require<argument_error>(tokens[i] < vocab, who, ": token ", tokens[i], " at index ", i,
                            " is outside the vocabulary of ", vocab);
}

inline void check_truncate(std::size_t n, std::size_t position, const char* who) {
  require<argument_error>(n <= position, who, ": cannot truncate ", position, " positions to ", n);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Pretrained decoders

/// A pretrained Llama / GPT-2 through its decoder_session (owned).
class decoder_lm {
 public:
  explicit decoder_lm(models::decoder_session session) : session_(std::move(session)) {}
  /// A session of `context` positions (0: the model's whole context).
  explicit decoder_lm(const models::decoder& model, std::size_t context = 0, const thread_pool& pool = serial_pool())
      : session_(model, context, pool) {}

  std::size_t vocab_size() const { return session_.model().config().vocab; }
  std::size_t context_length() const { return session_.context(); }
  std::size_t position() const { return session_.position(); }
  std::span<const float> append(std::span<const token_id> tokens) { return session_.append(tokens); }
  void append(std::span<const token_id> tokens, std::span<float> all_logits) { session_.append(tokens, all_logits); }
  void truncate(std::size_t n) {
    detail::check_truncate(n, position(), "decoder_lm");
    session_.truncate(n);
  }

  models::decoder_session& session() { return session_; }
  const models::decoder_session& session() const { return session_; }

 private:
  models::decoder_session session_;
};

// ---------------------------------------------------------------------------------------------
// Models trained here

/// A GPT trained with lmkit (models::gpt<...>, held by reference): its blocks' `infer` against a
/// KV cache of the model's context, so each token costs one position's work and truncate is free.
template <class Gpt>
class gpt_lm {
 public:
  explicit gpt_lm(Gpt& model, const thread_pool& pool = serial_pool())
      : model_(&model), pool_(&pool), cache_(model.config().layers, model.config().context, model.config().dim),
        last_(model.config().vocab) {}

  std::size_t vocab_size() const { return model_->config().vocab; }
  std::size_t context_length() const { return model_->config().context; }
  std::size_t position() const { return cache_.size(); }

  std::span<const float> append(std::span<const token_id> tokens) {
    run(tokens, last_);
    return last_;
  }
  void append(std::span<const token_id> tokens, std::span<float> out) {
    require<argument_error>(out.size() == tokens.size() * vocab_size(), "gpt_lm: ", out.size(), " slots for ",
                            tokens.size(), " tokens x ", vocab_size());
    run(tokens, out);
  }
  void truncate(std::size_t n) {
    detail::check_truncate(n, position(), "gpt_lm");
    cache_.truncate(n);
  }

 private:
  void run(std::span<const token_id> tokens, std::span<float> out) {
    detail::check_tokens(tokens, vocab_size(), "gpt_lm");
    if (position() + tokens.size() > context_length())
      throw argument_error(lmkit::detail::concat("gpt_lm: the context is full: ", position(), " positions held + ",
                                          tokens.size(), " new > ", context_length()));
    model_->infer(tokens, cache_, out, scratch_, *pool_);
  }

  const Gpt* model_;
  const thread_pool* pool_;
  kv_cache cache_;
  std::vector<float> last_, scratch_;
};

/// An LSTM LM trained with lmkit (models::lstm_lm<...>, held by reference; its state is carried
/// from one append to the next, so do not use the model for anything else meanwhile).
template <class Lstm>
class lstm_lm_adapter {
 public:
  explicit lstm_lm_adapter(Lstm& model, const thread_pool& pool = serial_pool()) : model_(&model), ctx_{&pool, false} {
    model_->carry_state(true);
    model_->reset_state();
  }

  std::size_t vocab_size() const { return model_->config().vocab; }
  std::size_t context_length() const { return 0; }
  std::size_t position() const { return history_.size(); }

  std::span<const float> append(std::span<const token_id> tokens) {
    const nn::const_matrix logits = run(tokens);
    return logits[tokens.size() - 1].span();
  }
  void append(std::span<const token_id> tokens, std::span<float> out) {
    const std::size_t vocab = vocab_size();
    require<argument_error>(out.size() == tokens.size() * vocab, "lstm_lm_adapter: ", out.size(), " slots for ",
                            tokens.size(), " tokens x ", vocab);
    const nn::const_matrix logits = run(tokens);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const auto row = logits[i].span();
      std::copy(row.begin(), row.end(), out.begin() + static_cast<std::ptrdiff_t>(i * vocab));
    }
  }
  /// The state cannot be rewound: it is reset and the first n tokens are fed again.
  void truncate(std::size_t n) {
    detail::check_truncate(n, position(), "lstm_lm_adapter");
    if (n == history_.size()) return;
    history_.resize(n);
    model_->reset_state();
    if (n > 0) model_->logits(history_, {1, n}, ctx_);
  }

 private:
  nn::const_matrix run(std::span<const token_id> tokens) {
    detail::check_tokens(tokens, vocab_size(), "lstm_lm_adapter");
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    return model_->logits(tokens, {1, tokens.size()}, ctx_);
  }

  Lstm* model_;
  nn::run_context ctx_;
  std::vector<token_id> history_;
};

// ---------------------------------------------------------------------------------------------
// N-gram models

/// A Kneser-Ney model over token ids: each token is the word spelled by its decimal id, each
/// sequence one sentence. Small or artificial data may leave an order without the counts the
/// discounts need; lmplz's fallback discounts (0.5, 1, 1.5) are then used.
inline ngram::ngram_model estimate_token_ngram(std::span<const std::vector<token_id>> sequences, std::size_t order) {
  require<argument_error>(!sequences.empty(), "estimate_token_ngram: no sequences");
  ngram::kneser_ney_counter counter(order);
  std::string line;
  for (const auto& s : sequences) {
    line.clear();
    for (const token_id t : s) {
      if (!line.empty()) line += ' ';
      line += std::to_string(t);
    }
    counter.add_line(line);
  }
  return ngram::estimate_kneser_ney(std::move(counter), {.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f}});
}

/// A back-off n-gram model (held by reference) as a language model. The scores are natural-log
/// probabilities, computed in one pass over the vocabulary (unigrams plus back-off weights) with
/// the few continuations of each context written over them: the same values as
/// ngram_model::score, without a look-up per word.
///
/// Over its words (token id = word id): <unk> (0) and <s> (1) never come next (score -inf);
/// feeding <s> starts a new sentence; </s> (2) is the end-of-sentence token. The first token of a
/// sequence follows <s>. Over token ids: words that do not spell a token id in range (</s>, <unk>)
/// score -inf, and their probability mass is left out (a softmax renormalises); a token the model
/// has never seen is <unk> when fed and is never proposed.
class ngram_lm {
 public:
  /// Over the model's own words.
  explicit ngram_lm(const ngram::ngram_model& model) : ngram_lm(model, model.vocab().size(), false) {}
  /// Over token ids 0 .. vocab-1 (a model built by estimate_token_ngram).
  static ngram_lm over_token_ids(const ngram::ngram_model& model, std::size_t vocab) { return ngram_lm(model, vocab, true); }

  std::size_t vocab_size() const { return vocab_; }
  std::size_t context_length() const { return 0; }
  std::size_t position() const { return history_.size(); }

  std::span<const float> append(std::span<const token_id> tokens) {
    detail::check_tokens(tokens, vocab_, "ngram_lm");
    for (const token_id t : tokens) {
      feed(t);
      history_.push_back(t);
    }
    return scores();
  }

  void truncate(std::size_t n) {
    detail::check_truncate(n, position(), "ngram_lm");
    history_.resize(n);
    // The state depends on the last order-1 tokens only; re-scored from an empty state they give
    // exactly the state of the whole history (n-grams are suffix-closed). A shorter history
    // starts at <s>, as the whole one did.
    const std::size_t keep = model_->order() - 1;
    std::size_t from = 0;
    if (n > keep) {
      state_ = ngram::ngram_state{};
      from = n - keep;
    } else {
      state_ = model_->begin_sentence();
    }
    // An <s> inside the window restarts the sentence there.
    for (std::size_t i = n; i-- > from;)
      if (!by_token_ids_ && history_[i] == ngram::bos_id) {
        state_ = model_->begin_sentence();
        from = i + 1;
        break;
      }
    for (std::size_t i = from; i < n; ++i) feed(history_[i]);
  }

  const ngram::ngram_model& model() const { return *model_; }

 private:
  /// For each order j >= 2, the continuations (last word, log10 p) of every context of j-1 words.
  struct continuation_index {
    std::vector<ngram::ngram_table<std::uint32_t>> context;  // [j-2]: context of j-1 words -> list
    std::vector<std::vector<std::pair<ngram::word_id, float>>> lists;
    std::vector<float> unigram;  // log10 p(word) of the unigram table, -inf if absent
  };

  ngram_lm(const ngram::ngram_model& model, std::size_t vocab, bool by_token_ids)
      : model_(&model), vocab_(vocab), by_token_ids_(by_token_ids) {
    require<argument_error>(vocab > 0, "ngram_lm: a vocabulary of 0 tokens");
    const std::size_t words = model.vocab().size();
    word_of_token_.assign(vocab, ngram::unk_id);
    token_of_word_.assign(words, none);
    if (by_token_ids) {
      for (ngram::word_id w = 0; w < words; ++w) {
        const std::string& name = model.vocab().word(w);
        if (name.empty() || name.size() > 10 || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
          continue;
        const std::uint64_t t = std::stoull(name);
        if (t < vocab) {
          word_of_token_[t] = w;
          token_of_word_[w] = static_cast<token_id>(t);
        }
      }
    } else {
      for (ngram::word_id w = 0; w < words; ++w) word_of_token_[w] = w, token_of_word_[w] = w;
      token_of_word_[ngram::unk_id] = token_of_word_[ngram::bos_id] = none;
    }
    index_ = build_index(model);
    word_scores_.resize(words);
    level_.resize(words);
    scores_.resize(vocab);
    state_ = model.begin_sentence();
  }

  static std::shared_ptr<const continuation_index> build_index(const ngram::ngram_model& model) {
    auto index = std::make_shared<continuation_index>();
    const auto& uni = model.table(1);
    index->unigram.assign(model.vocab().size(), -std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < uni.size(); ++i) {
      const ngram::word_id w = uni.words(i)[0];
      if (w < index->unigram.size()) index->unigram[w] = uni.value(i).log_prob;
    }
    for (std::size_t j = 2; j <= model.order(); ++j) {
      ngram::ngram_table<std::uint32_t> contexts(j - 1);
      const auto& table = model.table(j);
      for (std::size_t i = 0; i < table.size(); ++i) {
        const auto words = table.words(i);
        const std::size_t before = contexts.size();
        std::uint32_t& slot = contexts[words.first(j - 1)];
        if (contexts.size() != before) {
          slot = static_cast<std::uint32_t>(index->lists.size());
          index->lists.emplace_back();
        }
        index->lists[slot].push_back({words[j - 1], table.value(i).log_prob});
      }
      index->context.push_back(std::move(contexts));
    }
    return index;
  }

  void feed(token_id t) {
    const ngram::word_id w = word_of_token_[t];
    if (!by_token_ids_ && w == ngram::bos_id) {
      state_ = model_->begin_sentence();
      return;
    }
    model_->score(state_, w);
  }

  /// ln p(token | state) for every token.
  std::span<const float> scores() {
    const continuation_index& index = *index_;
    const std::size_t len = state_.length;
    // suffix[j] = sum of the back-offs of the contexts longer than j words
    std::array<float, ngram::max_order + 1> suffix{};
    suffix[len] = 0.0f;
    for (std::size_t k = len; k-- > 0;) suffix[k] = suffix[k + 1] + state_.backoff[k];
    const float all = suffix[0];
    for (std::size_t w = 0; w < word_scores_.size(); ++w) word_scores_[w] = index.unigram[w] + all;
    std::fill(level_.begin(), level_.end(), std::uint8_t{1});
    // score() matches from the shortest n-gram up and stops at the first missing one.
    for (std::size_t j = 1; j <= len && j < model_->order(); ++j) {
      const std::span<const ngram::word_id> context(state_.words.data() + len - j, j);
      const std::uint32_t* slot = index.context[j - 1].find(context);
      if (!slot) break;
      for (const auto& [w, log_prob] : index.lists[*slot])
        if (level_[w] == j) {
          word_scores_[w] = log_prob + suffix[j];
          level_[w] = static_cast<std::uint8_t>(j + 1);
        }
    }
    constexpr float ln10 = 2.302585092994046f;
    const float minus_infinity = -std::numeric_limits<float>::infinity();
    for (std::size_t t = 0; t < vocab_; ++t) {
      const ngram::word_id w = word_of_token_[t];
      scores_[t] = token_of_word_[w] == t ? word_scores_[w] * ln10 : minus_infinity;
    }
    return scores_;
  }

  static constexpr token_id none = std::numeric_limits<token_id>::max();

  const ngram::ngram_model* model_;
  std::size_t vocab_;
  bool by_token_ids_;
  std::vector<ngram::word_id> word_of_token_;
  std::vector<token_id> token_of_word_;
  std::shared_ptr<const continuation_index> index_;
  std::vector<float> word_scores_, scores_;
  std::vector<std::uint8_t> level_;
  ngram::ngram_state state_;
  std::vector<token_id> history_;
};

static_assert(language_model<decoder_lm> && batched_language_model<decoder_lm>);
static_assert(language_model<ngram_lm>);
static_assert(batched_language_model<gpt_lm<models::gpt<>>> && batched_language_model<lstm_lm_adapter<models::lstm_lm<>>>);

}  // namespace lmkit::gen
