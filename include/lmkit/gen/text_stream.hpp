// Generated tokens to text, as it becomes safe to show: the text of the prompt's tail and every
// token so far is decoded as a whole and the new suffix is what a token adds. A token may end
// inside a UTF-8 character (byte-level BPE, SentencePiece's byte pieces): the incomplete bytes
// (or the U+FFFD a decoder puts in their place) are held back until the character is whole. Text
// that could be the start of a stop string is held back too, so that a stop string is never shown,
// not even in part; when one appears the text ends just before it.
//
// Cost: one decode of (prompt tail + generated tokens) per token, O(generated length).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"

namespace lmkit::gen {

/// Token ids to text (a tokenizer's decode).
using detokenizer = std::function<std::string(std::span<const token_id>)>;

namespace detail {
template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};
}  // namespace detail

/// The decode of a tokenizer (anything with decode(span) -> string, or a std::variant of such, as
/// text::any_tokenizer), held by reference.
template <class Tokenizer>
detokenizer decoder_of(const Tokenizer& t) {
  return [&t](std::span<const token_id> ids) -> std::string {
    if constexpr (detail::is_variant<Tokenizer>::value)
      return std::visit([&](const auto& alt) { return std::string(alt.decode(ids)); }, t);
    else
      return std::string(t.decode(ids));
  };
}

namespace detail {

/// Bytes at the end of `s` that start a UTF-8 sequence left incomplete (0 if none).
inline std::size_t incomplete_utf8_tail(std::string_view s) {
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= std::min<std::size_t>(4, n); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const std::size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace detail

class text_stream {
 public:
  /// `prompt_tail`: the last tokens of the prompt, decoded in front of the generated ones so that
  /// a tokenizer that drops a leading space at the start of a text keeps the first token's.
  text_stream(detokenizer decode, std::span<const token_id> prompt_tail, std::vector<std::string> stop_strings = {})
      : decode_(std::move(decode)), stop_(std::move(stop_strings)) {
    require<argument_error>(static_cast<bool>(decode_), "text_stream: no decode function");
    for (const std::string& s : stop_)
      require<argument_error>(!s.empty(), "text_stream: a stop string is empty");
    const std::size_t keep = std::min<std::size_t>(prompt_tail.size(), 16);
    tokens_.assign(prompt_tail.end() - static_cast<std::ptrdiff_t>(keep), prompt_tail.end());
    base_ = decode_(tokens_);
  }

  /// Adds a generated token; returns the text that became safe to show (often one piece, may be
  /// empty). After a stop string appears, stopped() is true and further tokens are ignored.
  std::string push(token_id token) {
    if (stopped_) return {};
    tokens_.push_back(token);
    const std::string full = decode_(tokens_);
    text_ = full.starts_with(base_) ? full.substr(base_.size()) : full;
    // A stop string anywhere in the text (searched from just before what was already seen).
    std::size_t longest = 0;
    for (const std::string& s : stop_) longest = std::max(longest, s.size());
    const std::size_t from = scanned_ > longest ? scanned_ - longest : 0;
    std::size_t hit = std::string::npos;
    for (const std::string& s : stop_) hit = std::min(hit, text_.find(s, from));
    if (hit != std::string::npos) {
      stopped_ = true;
      stop_at_ = hit;
      return take(hit);
    }
    scanned_ = text_.size();
    std::size_t safe = text_.size() - detail::incomplete_utf8_tail(text_);
    while (safe >= 3 && std::string_view(text_).substr(safe - 3, 3) == "\xEF\xBF\xBD") safe -= 3;  // U+FFFD
    std::size_t hold = 0;  // a suffix that may grow into a stop string
    for (const std::string& s : stop_)
      for (std::size_t len = std::min(s.size() - 1, safe); len > hold; --len)
        if (std::string_view(text_).substr(safe - len, len) == std::string_view(s).substr(0, len)) {
          hold = len;
          break;
        }
    return take(safe - hold);
  }

  /// The text held back, at the end of the generation (up to a stop string if one appeared).
  std::string finish() { return take(stopped_ ? stop_at_ : text_.size()); }

  bool stopped() const { return stopped_; }
  /// The whole generated text (ends before the stop string once stopped()).
  std::string text() const { return stopped_ ? text_.substr(0, stop_at_) : text_; }
  /// Bytes handed out so far.
  std::size_t shown() const { return shown_; }

 private:
  /// text_[shown_, end) (if end is past what was shown), and marks it shown.
  std::string take(std::size_t end) {
    if (end <= shown_) return {};
    std::string piece = text_.substr(shown_, end - shown_);
    shown_ = end;
    return piece;
  }

  detokenizer decode_;
  std::vector<std::string> stop_;
  std::vector<token_id> tokens_;
  std::string base_, text_;
  std::size_t shown_ = 0, scanned_ = 0, stop_at_ = 0;
  bool stopped_ = false;
};

}  // namespace lmkit::gen
