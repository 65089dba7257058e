// One token per Unicode character, the vocabulary being the characters of a corpus in code point
// order (nanoGPT's Tiny Shakespeare has 65). A character outside it is an error by default, or
// `<unk>` (the last id) when the tokenizer is made to allow unknowns.
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/text/special_token.hpp"
#include "lmkit/text/token_bytes_table.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

class char_tokenizer {
 public:
  enum class unknown { refuse, map_to_unk };

  /// The distinct characters of `corpus`, sorted by code point.
  static char_tokenizer from_corpus(std::string_view corpus, unknown policy = unknown::refuse) {
    require_utf8(corpus, "corpus");
    std::vector<char32_t> seen;
    std::vector<bool> ascii(128, false);
    for (std::size_t i = 0; i < corpus.size();) {
      const decoded_code_point c = decode_utf8(corpus.data() + i);
      if (c.value < 128) {
        if (!ascii[c.value]) seen.push_back(c.value);
        ascii[c.value] = true;
      } else {
        seen.push_back(c.value);
      }
      i += c.size;
    }
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    return char_tokenizer(std::move(seen), policy);
  }

  /// From an alphabet (its characters in id order), e.g. as saved with a checkpoint.
  static char_tokenizer from_alphabet(std::string_view alphabet, unknown policy = unknown::refuse) {
    require_utf8(alphabet, "alphabet");
    std::vector<char32_t> chars;
    for (std::size_t i = 0; i < alphabet.size();) {
      const decoded_code_point c = decode_utf8(alphabet.data() + i);
      chars.push_back(c.value);
      i += c.size;
    }
    return char_tokenizer(std::move(chars), policy);
  }

  std::vector<token_id> encode(std::string_view text) const {
    require_utf8(text, "text to encode");
    std::vector<token_id> ids;
    ids.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      const decoded_code_point c = decode_utf8(text.data() + i);
      token_id id = c.value < 128 ? ascii_[c.value] : token_bytes_table::none;
      if (c.value >= 128) {
        const auto it = others_.find(c.value);
        if (it != others_.end()) id = it->second;
      }
      if (id == token_bytes_table::none) {
        require<argument_error>(policy_ == unknown::map_to_unk, "text to encode: character U+", std::hex,
                                std::uint32_t(c.value), std::dec, " at byte ", i, " is not in the vocabulary");
        id = token_id(chars_.size());
      }
      ids.push_back(id);
      i += c.size;
    }
    return ids;
  }

  std::string decode(std::span<const token_id> ids) const {
    std::string out;
    for (const token_id id : ids) {
      require<argument_error>(id < vocab_size(), "token id ", id, " is not in the vocabulary (size ", vocab_size(), ")");
      if (id == chars_.size())
        out += "\xEF\xBF\xBD";  // <unk> decodes as U+FFFD
      else
        append_utf8(out, chars_[id]);
    }
    return out;
  }

  std::size_t vocab_size() const { return chars_.size() + (policy_ == unknown::map_to_unk ? 1 : 0); }
  /// `<unk>` (the last id) when unknown characters map to it; none otherwise.
  std::vector<special_token> special_tokens() const {
    if (policy_ != unknown::map_to_unk) return {};
    return {{"<unk>", token_id(chars_.size())}};
  }
  /// The characters in id order, as UTF-8 (what from_alphabet takes back).
  std::string alphabet() const {
    std::string out;
    for (const char32_t c : chars_) append_utf8(out, c);
    return out;
  }

 private:
  char_tokenizer(std::vector<char32_t> chars, unknown policy) : chars_(std::move(chars)), policy_(policy) {
    std::fill(std::begin(ascii_), std::end(ascii_), token_bytes_table::none);
    for (std::size_t k = 0; k < chars_.size(); ++k) {
      const char32_t c = chars_[k];
      require<argument_error>(c < 0x110000 && !(c >= 0xD800 && c <= 0xDFFF), "alphabet: U+", std::hex, std::uint32_t(c),
                              " is not a Unicode scalar value");
      const bool fresh = c < 128 ? ascii_[c] == token_bytes_table::none : !others_.contains(c);
      require<argument_error>(fresh, "alphabet: character U+", std::hex, std::uint32_t(c), " appears twice");
      if (c < 128)
        ascii_[c] = token_id(k);
      else
        others_.emplace(c, token_id(k));
    }
  }

  std::vector<char32_t> chars_;
  unknown policy_;
  token_id ascii_[128];
  std::unordered_map<char32_t, token_id> others_;
};

}  // namespace lmkit::text
