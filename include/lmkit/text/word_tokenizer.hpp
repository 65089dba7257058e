// One token per whitespace-separated word, the vocabulary being a corpus's most frequent words;
// every other word is `<unk>` (id 0). Decoding joins words with single spaces: the spacing of the
// original text is not kept, as in word-level language modelling (Penn Treebank).
#pragma once

#include <algorithm>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/string_map.hpp"
#include "lmkit/text/special_token.hpp"
#include "lmkit/text/token_bytes_table.hpp"
#include "lmkit/text/words.hpp"

namespace lmkit::text {

struct word_vocabulary_options {
  std::size_t max_words = 0;  // 0: no limit; otherwise the vocabulary's size, <unk> included
  std::size_t min_count = 1;  // words seen fewer times become <unk>
};

class word_tokenizer {
 public:
  static constexpr token_id unk = 0;

  /// The words of `corpus` by descending count (ties in byte order), after `<unk>`.
  static word_tokenizer from_corpus(std::string_view corpus, word_vocabulary_options opt = {}) {
    std::unordered_map<std::string_view, std::size_t> counts;  // views into the corpus
    for_each_word(corpus, [&](std::string_view w) { ++counts[w]; });
    std::vector<std::pair<std::string_view, std::size_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::vector<std::string> words{"<unk>"};
    for (const auto& [w, n] : sorted) {
      if (n < opt.min_count || w == "<unk>") continue;
      if (opt.max_words != 0 && words.size() >= opt.max_words) break;
      words.emplace_back(w);
    }
    return word_tokenizer(std::move(words));
  }

  /// From a word list in id order whose first word is `<unk>`.
  explicit word_tokenizer(std::vector<std::string> words) : words_(std::move(words)) {
    require<argument_error>(!words_.empty() && words_[0] == "<unk>", "word list must start with <unk>");
    for (std::size_t k = 0; k < words_.size(); ++k) {
      require<argument_error>(!words_[k].empty() && words_[k].find_first_of(" \t\n\r\v\f") == std::string::npos,
                              "word ", k, " is empty or contains white space");
      require<argument_error>(ids_.emplace(words_[k], token_id(k)).second, "word '", words_[k], "' appears twice");
    }
  }

  std::vector<token_id> encode(std::string_view text) const {
    std::vector<token_id> ids;
    for_each_word(text, [&](std::string_view w) {
      const auto it = ids_.find(w);
      ids.push_back(it == ids_.end() ? unk : it->second);
    });
    return ids;
  }

  std::string decode(std::span<const token_id> ids) const {
    std::string out;
    for (const token_id id : ids) {
      require<argument_error>(id < words_.size(), "token id ", id, " is not in the vocabulary (size ", words_.size(), ")");
      if (!out.empty()) out += ' ';
      out += words_[id];
    }
    return out;
  }

  std::size_t vocab_size() const { return words_.size(); }
  std::vector<special_token> special_tokens() const { return {{"<unk>", unk}}; }
  const std::vector<std::string>& words() const { return words_; }

 private:
  std::vector<std::string> words_;
  string_map<token_id> ids_;
};

}  // namespace lmkit::text
