// Pre-tokenisation: the regular expressions of GPT-2, cl100k_base and o200k_base, each written out
// as a scanner. The scanners give the matches the regex engine gives (leftmost-first alternation,
// greedy quantifiers with backtracking, the `\s+(?!\S)` look-ahead), one code point class look-up
// per character and no backtracking beyond what the patterns force.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lmkit/text/unicode_class.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

/// The pre-tokenising patterns lmkit implements.
enum class split_pattern { gpt2, cl100k_base, o200k_base };

/// The regular expression each pattern implements, as tiktoken spells it.
inline constexpr std::string_view regex_of(split_pattern p) {
  switch (p) {
    case split_pattern::gpt2:
      return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    case split_pattern::cl100k_base:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case split_pattern::o200k_base:
      return R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  return {};
}

/// The pattern whose regex is exactly `regex`, if lmkit implements it.
inline std::optional<split_pattern> split_pattern_from_regex(std::string_view regex) {
  for (auto p : {split_pattern::gpt2, split_pattern::cl100k_base, split_pattern::o200k_base})
    if (regex_of(p) == regex) return p;
  return std::nullopt;
}

namespace detail {

/// Walks valid UTF-8 by code point. Positions are byte offsets.
class class_scanner {
 public:
  class_scanner(const char* text, std::size_t size) : s_(text), n_(size) {}

  struct at_result {
    char32_t cp;
    std::uint8_t cls;
    std::uint32_t size;
  };
  [[gnu::always_inline]] at_result at(std::size_t i) const {
    const auto b = static_cast<unsigned char>(s_[i]);
    if (b < 0x80) return {b, ascii_classes[b], 1};
    const decoded_code_point d = decode_utf8(s_ + i);
    return {d.value, unicode_class(d.value), d.size};
  }
  std::size_t size() const { return n_; }

  /// End of the run of code points from `i` whose class satisfies `in`.
  template <class Pred>
  [[gnu::always_inline]] std::size_t run(std::size_t i, Pred in) const {
    while (i < n_) {
      const at_result c = at(i);
      if (!in(c)) break;
      i += c.size;
    }
    return i;
  }

  /// Length of the contraction ('s 't 're 've 'm 'll 'd) at `i`, 0 if none. Case-insensitive
  /// matching follows Unicode simple case folding, under which long s (U+017F) equals 's'.
  std::size_t contraction(std::size_t i, bool ignore_case) const {
    if (i >= n_ || s_[i] != '\'' || i + 1 >= n_) return 0;
    auto fold = [&](std::size_t j) -> char32_t {
      if (j >= n_) return 0;
      const at_result c = at(j);
      if (!ignore_case) return c.cp;
      if (c.cp >= 'A' && c.cp <= 'Z') return c.cp + 32;
      if (c.cp == 0x17F) return 's';
      return c.cp;
    };
    const char32_t c1 = fold(i + 1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 1 + at(i + 1).size;
    const char32_t c2 = (c1 == 'r' || c1 == 'v' || c1 == 'l') ? fold(i + 2) : 0;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
  }

  /// The whitespace alternatives shared by the patterns, at `i` (a white-space character):
  /// `\s*[\r\n]+` when `newline_rule`, then `\s+(?!\S)`, then `\s+`.
  std::size_t white_space_piece(std::size_t i, bool newline_rule) const {
    std::size_t j = i, last_start = i, after_newline = 0;
    while (j < n_) {
      const at_result c = at(j);
      if (!(c.cls & white_space)) break;
      last_start = j;
      j += c.size;
      if (c.cp == '\r' || c.cp == '\n') after_newline = j;
    }
    if (newline_rule && after_newline != 0) return after_newline;
    if (j == n_ || last_start == i) return j;  // all of it: at the end, or a single character
    return last_start;                          // leave the last one to join the next word
  }

 private:
  const char* s_;
  std::size_t n_;
};

inline bool is_letter(const class_scanner::at_result& c) { return c.cls & any_letter; }
inline bool is_number(const class_scanner::at_result& c) { return c.cls & number; }
inline bool is_other(const class_scanner::at_result& c) { return !(c.cls & (any_letter | number | white_space)); }
inline bool is_newline(const class_scanner::at_result& c) { return c.cp == '\r' || c.cp == '\n'; }
/// [^\r\n\p{L}\p{N}]
inline bool is_prefix(const class_scanner::at_result& c) { return !(c.cls & (any_letter | number)) && !is_newline(c); }

/// `\p{N}{1,3}` given that the character before `j` was a number: up to two more.
inline std::size_t up_to_three_numbers(const class_scanner& s, std::size_t j) {
  for (int k = 1; k < 3 && j < s.size(); ++k) {
    const auto c = s.at(j);
    if (!is_number(c)) break;
    j += c.size;
  }
  return j;
}

/// ` ?[^\s\p{L}\p{N}]+` then a run of `trailing` characters, at `i` (whose character is `c0`);
/// 0 if it does not match.
template <class Trailing>
std::size_t other_run(const class_scanner& s, std::size_t i, const class_scanner::at_result& c0, Trailing trailing) {
  const std::size_t i1 = i + c0.size;
  std::size_t start = i;
  if (c0.cp == ' ' && i1 < s.size() && is_other(s.at(i1))) start = i1;
  if (start == i && !is_other(c0)) return 0;
  return s.run(s.run(start, is_other), trailing);
}

inline std::size_t gpt2_piece(const class_scanner& s, std::size_t i) {
  if (const std::size_t k = s.contraction(i, false)) return i + k;
  const auto c0 = s.at(i);
  std::size_t start = i;  // where the ` ?X+` run starts
  auto c = c0;
  if (c0.cp == ' ' && i + 1 < s.size()) {
    const auto c1 = s.at(i + 1);
    if (!(c1.cls & white_space)) {
      start = i + 1;
      c = c1;
    }
  }
  if (is_letter(c)) return s.run(start, is_letter);
  if (is_number(c)) return s.run(start, is_number);
  if (is_other(c)) return s.run(start, is_other);
  return s.white_space_piece(i, false);
}

inline std::size_t cl100k_piece(const class_scanner& s, std::size_t i) {
  if (const std::size_t k = s.contraction(i, true)) return i + k;
  const auto c0 = s.at(i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (is_letter(c0)) return s.run(i, is_letter);
  const std::size_t i1 = i + c0.size;
  if (is_prefix(c0) && i1 < s.size() && is_letter(s.at(i1))) return s.run(i1, is_letter);
  if (is_number(c0)) return up_to_three_numbers(s, i1);
  if (const std::size_t e = other_run(s, i, c0, is_newline)) return e;
  return s.white_space_piece(i, true);
}

/// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}]
inline bool is_upper_side(const class_scanner::at_result& c) {
  return c.cls & (upper_letter | title_letter | modifier_letter | other_letter | mark);
}
inline bool is_lower_side(const class_scanner::at_result& c) {
  return c.cls & (lower_letter | modifier_letter | other_letter | mark);
}

/// `U*W+` at q (U: upper side, W: lower side) with the regex's backtracking: U* first takes the
/// whole run, then gives back characters until W+ can start. Returns the end, or npos.
inline std::size_t upper_then_lower(const class_scanner& s, std::size_t q) {
  std::size_t j = q, last_lower_in_run = std::string_view::npos, last_end = 0;
  while (j < s.size()) {
    const auto c = s.at(j);
    if (!is_upper_side(c)) break;
    if (is_lower_side(c)) {
      last_lower_in_run = j;
      last_end = j + c.size;
    }
    j += c.size;
  }
  if (j < s.size() && is_lower_side(s.at(j))) return s.run(j, is_lower_side);
  // Backtracking: W+ starts at the last character of the U run that is also W; the character after
  // it is not W (it is in U only), so W+ takes that one character.
  if (last_lower_in_run != std::string_view::npos) return last_end;
  return std::string_view::npos;
}

inline std::size_t o200k_piece(const class_scanner& s, std::size_t i) {
  const auto c0 = s.at(i);
  const std::size_t i1 = i + c0.size;
  const bool prefixed = is_prefix(c0) && i1 < s.size();
  // [^\r\n\p{L}\p{N}]?U*W+(contraction)?  — with and then without the optional prefix character.
  for (std::size_t q : {prefixed ? i1 : std::string_view::npos, i}) {
    if (q == std::string_view::npos) continue;
    const std::size_t e = upper_then_lower(s, q);
    if (e != std::string_view::npos) return e + s.contraction(e, true);
  }
  // [^\r\n\p{L}\p{N}]?U+W*(contraction)?
  for (std::size_t q : {prefixed ? i1 : std::string_view::npos, i}) {
    if (q == std::string_view::npos || !is_upper_side(s.at(q))) continue;
    const std::size_t e = s.run(s.run(q, is_upper_side), is_lower_side);
    return e + s.contraction(e, true);
  }
  if (is_number(c0)) return up_to_three_numbers(s, i1);
  if (const std::size_t e = other_run(s, i, c0, [](const auto& c) { return is_newline(c) || c.cp == '/'; })) return e;
  return s.white_space_piece(i, true);
}

}  // namespace detail

/// Calls `f(std::string_view piece)` for each match of `pattern` in `text`, in order. The pieces
/// cover the text without gaps. `text` must be valid UTF-8 (see check_utf8).
template <class F>
void for_each_piece(split_pattern pattern, std::string_view text, F&& f) {
  const detail::class_scanner s(text.data(), text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = 0;
    switch (pattern) {
      case split_pattern::gpt2: end = detail::gpt2_piece(s, i); break;
      case split_pattern::cl100k_base: end = detail::cl100k_piece(s, i); break;
      case split_pattern::o200k_base: end = detail::o200k_piece(s, i); break;
    }
    f(text.substr(i, end - i));
    i = end;
  }
}

}  // namespace lmkit::text
