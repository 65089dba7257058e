// A special token: text such as "<|endoftext|>", "<s>" or "<unk>" that stands for one id of its own
// rather than for the bytes of its text.
#pragma once

#include <cstddef>
#include <string>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "lmkit/text/token_bytes_table.hpp"
#include "lmkit/text/unicode_class.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

struct special_token {
  std::string text;
  token_id id;
  // Hugging Face's added-token options: the white space on that side goes with the token.
  bool lstrip = false, rstrip = false;
  bool operator==(const special_token&) const = default;
};

namespace detail {
inline bool white_space_at(std::string_view text, std::size_t at) {
  return (unicode_class(decode_utf8(text.data() + at).value) & white_space) != 0;
}
/// The size of the character that ends at byte `end` (valid UTF-8).
inline std::size_t size_of_char_before(std::string_view text, std::size_t end) {
  std::size_t size = 1;
  while (size < end && (static_cast<unsigned char>(text[end - size]) & 0xC0) == 0x80) ++size;
  return size;
}
}  // namespace detail

/// The bytes [first, second) that a match of `token` at byte `at` of valid UTF-8 `text` takes:
/// its own, and with lstrip the white space before it (back to `floor` at most), with rstrip the
/// white space after it.
inline std::pair<std::size_t, std::size_t> special_token_span(std::string_view text, std::size_t floor, std::size_t at,
                                                              const special_token& token) {
  std::size_t begin = at, end = at + token.text.size();
  if (token.lstrip)
    while (begin > floor && detail::white_space_at(text, begin - detail::size_of_char_before(text, begin)))
      begin -= detail::size_of_char_before(text, begin);
  if (token.rstrip)
    while (end < text.size() && detail::white_space_at(text, end)) end += decode_utf8(text.data() + end).size;
  return {begin, end};
}

/// Finds special tokens in a text one after another: from a position on, the earliest match, the
/// longest of those starting at the same byte. Each token's next occurrence is searched for again
/// only once passed, so a text with many special tokens is scanned in linear time per token.
class special_token_finder {
 public:
  special_token_finder(std::span<const special_token> tokens, std::string_view text)
      : tokens_(tokens), text_(text), next_(tokens.size()) {
    for (std::size_t k = 0; k < tokens.size(); ++k) next_[k] = text.find(tokens[k].text);
  }
  struct match {
    const special_token* token = nullptr;  // none found: nullptr
    std::size_t at = std::string_view::npos;
  };
  match next(std::size_t pos) {
    match best;
    for (std::size_t k = 0; k < tokens_.size(); ++k) {
      if (next_[k] < pos) next_[k] = text_.find(tokens_[k].text, pos);  // npos is never < pos
      const std::size_t at = next_[k];
      if (at != std::string_view::npos &&
          (best.token == nullptr || at < best.at || (at == best.at && tokens_[k].text.size() > best.token->text.size())))
        best = {&tokens_[k], at};
    }
    return best;
  }

 private:
  std::span<const special_token> tokens_;
  std::string_view text_;
  std::vector<std::size_t> next_;
};

}  // namespace lmkit::text
