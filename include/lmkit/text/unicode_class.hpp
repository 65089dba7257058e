// The Unicode properties that pre-tokenising patterns ask about (\p{L} and its parts, \p{M},
// \p{N}, \s), one byte per code point, as of Unicode 16.0. The general categories come from
// utf8proc (Debian's libutf8proc 2.8: Unicode 15.0) and, for the code points that Unicode 15.1 and
// 16.0 assigned, from a table below; they are copied once into a two-stage table so that the
// per-character question is two loads, with ASCII answered from a constant.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <utf8proc.h>

namespace lmkit::text {

/// Bits of a code point's class. Letters keep their sub-category because o200k's pattern tells
/// upper-case (Lu, Lt) from lower-case (Ll) letters, with Lm and Lo on both sides.
enum char_class : std::uint8_t {
  upper_letter = 1,     // Lu
  lower_letter = 2,     // Ll
  title_letter = 4,     // Lt
  modifier_letter = 8,  // Lm
  other_letter = 16,    // Lo
  mark = 32,            // Mn, Mc, Me
  number = 64,          // Nd, Nl, No
  white_space = 128,    // the White_Space property: Zs, Zl, Zp, U+0009..U+000D, U+0085
};
inline constexpr std::uint8_t any_letter = upper_letter | lower_letter | title_letter | modifier_letter | other_letter;

namespace detail {

/// A run of code points of one class.
struct class_range {
  char32_t first, last;
  std::uint8_t bits;
};

/// The letters, marks and numbers that Unicode 15.1 and 16.0 added (no white space was added, and
/// no older code point changed class). tiktoken's patterns run on Rust's regex crate, whose tables
/// are Unicode 16.0: without these, text with, say, an Egyptian hieroglyph of Extended-A before
/// "'t" splits differently there (found by comparing with the real tiktoken on random text).
/// Written from the Unicode Character Database 16.0's general categories, and read only where
/// utf8proc calls a code point unassigned, so that a later utf8proc's own data takes over.
inline constexpr class_range unicode_16_additions[] = {
    {0x0897, 0x0897, mark}, {0x1C89, 0x1C89, upper_letter}, {0x1C8A, 0x1C8A, lower_letter},
    {0xA7CB, 0xA7CC, upper_letter}, {0xA7CD, 0xA7CD, lower_letter}, {0xA7DA, 0xA7DA, upper_letter},
    {0xA7DB, 0xA7DB, lower_letter}, {0xA7DC, 0xA7DC, upper_letter}, {0x105C0, 0x105F3, other_letter},
    {0x10D40, 0x10D49, number}, {0x10D4A, 0x10D4D, other_letter}, {0x10D4E, 0x10D4E, modifier_letter},
    {0x10D4F, 0x10D4F, other_letter}, {0x10D50, 0x10D65, upper_letter}, {0x10D69, 0x10D6D, mark},
    {0x10D6F, 0x10D6F, modifier_letter}, {0x10D70, 0x10D85, lower_letter}, {0x10EC2, 0x10EC4, other_letter},
    {0x10EFC, 0x10EFC, mark}, {0x11380, 0x11389, other_letter}, {0x1138B, 0x1138B, other_letter},
    {0x1138E, 0x1138E, other_letter}, {0x11390, 0x113B5, other_letter}, {0x113B7, 0x113B7, other_letter},
    {0x113B8, 0x113C0, mark}, {0x113C2, 0x113C2, mark}, {0x113C5, 0x113C5, mark}, {0x113C7, 0x113CA, mark},
    {0x113CC, 0x113D0, mark}, {0x113D1, 0x113D1, other_letter}, {0x113D2, 0x113D2, mark},
    {0x113D3, 0x113D3, other_letter}, {0x113E1, 0x113E2, mark}, {0x116D0, 0x116E3, number},
    {0x11BC0, 0x11BE0, other_letter}, {0x11BF0, 0x11BF9, number}, {0x11F5A, 0x11F5A, mark},
    {0x13460, 0x143FA, other_letter}, {0x16100, 0x1611D, other_letter}, {0x1611E, 0x1612F, mark},
    {0x16130, 0x16139, number}, {0x16D40, 0x16D42, modifier_letter}, {0x16D43, 0x16D6A, other_letter},
    {0x16D6B, 0x16D6C, modifier_letter}, {0x16D70, 0x16D79, number}, {0x18CFF, 0x18CFF, other_letter},
    {0x1CCF0, 0x1CCF9, number}, {0x1E5D0, 0x1E5ED, other_letter}, {0x1E5EE, 0x1E5EF, mark},
    {0x1E5F0, 0x1E5F0, other_letter}, {0x1E5F1, 0x1E5FA, number}, {0x2EBF0, 0x2EE5D, other_letter}
};

inline std::uint8_t class_from_utf8proc(char32_t c) {
  if ((c >= 0x09 && c <= 0x0D) || c == 0x85) return white_space;
  switch (utf8proc_category(utf8proc_int32_t(c))) {
    case UTF8PROC_CATEGORY_LU: return upper_letter;
    case UTF8PROC_CATEGORY_LL: return lower_letter;
    case UTF8PROC_CATEGORY_LT: return title_letter;
    case UTF8PROC_CATEGORY_LM: return modifier_letter;
    case UTF8PROC_CATEGORY_LO: return other_letter;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: return mark;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return number;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return white_space;
    case UTF8PROC_CATEGORY_CN: {  // the ranges are in order: the last one starting at or before c
      const auto after = std::ranges::upper_bound(unicode_16_additions, c, {}, &class_range::first);
      return after != std::begin(unicode_16_additions) && c <= after[-1].last ? after[-1].bits : 0;
    }
    default: return 0;
  }
}

/// Blocks of 256 code points; identical blocks (most of the unassigned planes) are stored once.
struct unicode_class_table {
  static constexpr char32_t block_bits = 8;
  static constexpr char32_t blocks = 0x110000 >> block_bits;
  std::array<std::uint16_t, blocks> block_of{};
  std::vector<std::uint8_t> classes;  // blocks_stored x 256

  unicode_class_table() {
    std::map<std::string, std::uint16_t> stored;  // block contents -> index
    std::string block(std::size_t(1) << block_bits, '\0');
    for (char32_t b = 0; b < blocks; ++b) {
      for (char32_t i = 0; i < block.size(); ++i) block[i] = char(class_from_utf8proc((b << block_bits) | i));
      auto [it, added] = stored.try_emplace(block, std::uint16_t(stored.size()));
      if (added) classes.insert(classes.end(), block.begin(), block.end());
      block_of[b] = it->second;
    }
  }
};

inline const unicode_class_table& class_table() {
  static const unicode_class_table table;  // built on first use, thread-safe (C++11 statics)
  return table;
}

inline constexpr std::array<std::uint8_t, 128> ascii_classes = [] {
  std::array<std::uint8_t, 128> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = upper_letter;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = lower_letter;
  for (int c = '0'; c <= '9'; ++c) t[c] = number;
  for (int c = 0x09; c <= 0x0D; ++c) t[c] = white_space;
  t[' '] = white_space;
  return t;
}();

}  // namespace detail

/// The class bits of a code point (0 for punctuation, symbols, controls, unassigned).
inline std::uint8_t unicode_class(char32_t c) {
  if (c < 0x80) return detail::ascii_classes[c];
  if (c >= 0x110000) return 0;
  const auto& t = detail::class_table();
  return t.classes[(std::size_t(t.block_of[c >> 8]) << 8) | (c & 0xFF)];
}

/// Unicode version of the class data: 16.0 (utf8proc's own, when that is later).
inline std::string unicode_version() {
  const std::string library = utf8proc_unicode_version();
  return std::stoi(library) >= 16 ? library : "16.0.0";
}

}  // namespace lmkit::text
