// Words as whitespace-separated runs: the splitting of KenLM, SRILM and word-level language
// modelling (Penn Treebank). ASCII white space only, as those tools do.
#pragma once

#include <cstddef>
#include <string_view>

namespace lmkit::text {

/// Calls `each(word)` for the words of `text` split on ASCII white space (space, tab, CR, LF, VT, FF).
template <class Each>
void for_each_word(std::string_view text, Each&& each) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) each(text.substr(start, i - start));
  }
}

}  // namespace lmkit::text
