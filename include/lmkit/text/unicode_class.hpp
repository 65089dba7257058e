// The Unicode properties that pre-tokenising patterns ask about (\p{L} and its parts, \p{M},
// \p{N}, \s), one byte per code point. The general categories come from utf8proc (Debian's
// libutf8proc, Unicode 15); they are copied once into a two-stage table so that the per-character
// question is two loads, with ASCII answered from a constant.
#pragma once

#include <array>
#include <cstdint>
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

/// Unicode version of the class data (utf8proc's).
inline const char* unicode_version() { return utf8proc_unicode_version(); }

}  // namespace lmkit::text
