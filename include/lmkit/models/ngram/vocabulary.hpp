// The words of an n-gram model and their ids. Ids 0, 1, 2 are <unk>, <s> and </s>, as in KenLM;
// the other words are numbered in order of first appearance.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/string_map.hpp"
#include "lmkit/text/words.hpp"

namespace lmkit::ngram {

using word_id = std::uint32_t;

inline constexpr word_id unk_id = 0;
inline constexpr word_id bos_id = 1;
inline constexpr word_id eos_id = 2;

class vocabulary {
 public:
  vocabulary() {
    for (std::string_view w : {"<unk>", "<s>", "</s>"}) insert(w);
  }

  /// The id of `word`, adding it if new.
  word_id insert(std::string_view word) {
    if (const auto it = ids_.find(word); it != ids_.end()) return it->second;
    const auto id = static_cast<word_id>(words_.size());
    ids_.emplace(std::string(word), id);
    words_.emplace_back(word);
    return id;
  }

  /// The id of `word`, or <unk>'s for a word the model has not seen.
  word_id find(std::string_view word) const {
    const auto it = ids_.find(word);
    return it == ids_.end() ? unk_id : it->second;
  }

  bool contains(std::string_view word) const { return ids_.find(word) != ids_.end(); }
  const std::string& word(word_id id) const {
    require<argument_error>(id < words_.size(), "vocabulary: no word with id ", id);
    return words_[id];
  }
  std::size_t size() const { return words_.size(); }

 private:
  string_map<word_id> ids_;  // looked up from a string_view without allocating
  std::vector<std::string> words_;
};

/// The words of a line split on ASCII whitespace, as KenLM splits.
using text::for_each_word;

}  // namespace lmkit::ngram
