// ngram<N>: a back-off n-gram model whose order is fixed at compile time. The same tables, scores
// and files as ngram_model (whose order is chosen at run time, and which this wraps); what the
// fixed order buys is a state of N - 1 words instead of max_order, and an order mismatch caught
// when the model is made rather than when it is used.
#pragma once

#include <cstddef>
#include <filesystem>
#include <istream>
#include <string_view>
#include <utility>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"

namespace lmkit::ngram {

template <std::size_t N>
class ngram {
  static_assert(N >= 1 && N <= max_order, "ngram<N>: the order must be 1 to max_order");

 public:
  static constexpr std::size_t order = N;
  using state = basic_ngram_state<N - 1>;

  /// Takes a model of order N (an argument_error names any other order).
  explicit ngram(ngram_model model) : model_(std::move(model)) {
    require<argument_error>(model_.order() == N, "ngram<", N, ">: the model has order ", model_.order());
  }

  /// Interpolated modified Kneser-Ney from sentences, one per line (as lmplz -o N).
  static ngram estimate(std::istream& lines, const kneser_ney_options& options = {}) {
    return ngram(estimate_kneser_ney(lines, N, options));
  }

  const ngram_model& model() const { return model_; }
  const vocabulary& vocab() const { return model_.vocab(); }

  state begin_sentence() const { return model_.template begin_sentence<N - 1>(); }
  word_score score(state& s, word_id word) const { return model_.score(s, word); }

  template <class EachWord>
  text_score score_sentence(std::string_view line, EachWord&& each_word) const {
    return model_.template score_sentence<N - 1>(line, std::forward<EachWord>(each_word));
  }
  text_score score_sentence(std::string_view line) const { return model_.template score_sentence<N - 1>(line); }

 private:
  ngram_model model_;
};

}  // namespace lmkit::ngram
