// UTF-8: strict validation (the definition in RFC 3629 / Unicode ch. 3: no overlong forms, no
// surrogates, nothing above U+10FFFF), decoding of text already validated, and encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "lmkit/core/error.hpp"

namespace lmkit::text {

/// Where the first invalid byte sequence starts and why, or `offset == npos` for valid text.
struct utf8_check {
  static constexpr std::size_t npos = std::string_view::npos;
  std::size_t offset = npos;
  const char* reason = "";
  explicit operator bool() const { return offset == npos; }
};

namespace detail {

/// Length of the well-formed sequence starting at `p` (1..4), or 0 if it is not well formed.
/// Table 3-7 of the Unicode standard, byte by byte.
inline std::size_t utf8_sequence_length(const unsigned char* p, std::size_t available, const char** reason) {
  const unsigned char b0 = p[0];
  if (b0 < 0x80) return 1;
  auto continuation = [&](std::size_t i, unsigned char low, unsigned char high) {
    return i < available && p[i] >= low && p[i] <= high;
  };
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;   // below: overlong
    if (b0 == 0xED) high = 0x9F;  // above: UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;   // below: overlong
    if (b0 == 0xF4) high = 0x8F;  // above: beyond U+10FFFF
  } else {
    *reason = b0 < 0xC0 ? "continuation byte without a lead byte"
              : b0 < 0xC2 ? "overlong two-byte form"
                          : "byte never used in UTF-8";
    return 0;
  }
  if (!continuation(1, low, high)) {
    *reason = 1 >= available ? "sequence cut off by the end of the text"
              : (p[1] >= 0x80 && p[1] <= 0xBF)
                  ? (b0 == 0xED ? "UTF-16 surrogate" : b0 == 0xF4 ? "code point above U+10FFFF" : "overlong form")
                  : "lead byte not followed by a continuation byte";
    return 0;
  }
  for (std::size_t i = 2; i < length; ++i) {
    if (!continuation(i, 0x80, 0xBF)) {
      *reason = i >= available ? "sequence cut off by the end of the text"
                               : "lead byte not followed by enough continuation bytes";
      return 0;
    }
  }
  return length;
}

}  // namespace detail

/// Checks that `text` is well-formed UTF-8; ASCII is skipped eight bytes at a time.
inline utf8_check check_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const char* reason = "";
    const std::size_t length = detail::utf8_sequence_length(p + i, n - i, &reason);
    if (length == 0) return {i, reason};
    i += length;
  }
  return {};
}

/// Throws format_error naming `what` and the byte offset unless `text` is well-formed UTF-8.
inline void require_utf8(std::string_view text, std::string_view what) {
  const utf8_check check = check_utf8(text);
  require<format_error>(bool(check), what, ": invalid UTF-8 at byte ", check.offset, ": ", check.reason);
}

/// The code point starting at `p` and its length in bytes, for text known to be valid.
struct decoded_code_point {
  char32_t value;
  std::uint32_t size;
};

inline decoded_code_point decode_utf8(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  const unsigned char b0 = u[0];
  if (b0 < 0x80) return {b0, 1};
  if (b0 < 0xE0) return {char32_t(b0 & 0x1F) << 6 | (u[1] & 0x3F), 2};
  if (b0 < 0xF0) return {char32_t(b0 & 0x0F) << 12 | char32_t(u[1] & 0x3F) << 6 | (u[2] & 0x3F), 3};
  return {char32_t(b0 & 0x07) << 18 | char32_t(u[1] & 0x3F) << 12 | char32_t(u[2] & 0x3F) << 6 | (u[3] & 0x3F), 4};
}

/// Appends the UTF-8 form of a Unicode scalar value.
inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

/// `bytes` with every ill-formed sequence replaced by U+FFFD, one per maximal ill-formed prefix
/// (the "substitution of maximal subparts" practice of Unicode ch. 3, as Python and Rust do).
inline std::string replace_invalid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const char* reason = "";
    const std::size_t length = detail::utf8_sequence_length(p + i, n - i, &reason);
    if (length > 0) {
      out.append(bytes.substr(i, length));
      i += length;
      continue;
    }
    // The maximal subpart: the lead byte and as many continuation bytes as were allowed.
    std::size_t skip = 1;
    const unsigned char b0 = p[i];
    std::size_t expected = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 ? 2 : 1;
    if (b0 > 0xF4) expected = 1;
    while (skip < expected && i + skip < n) {
      const unsigned char b = p[i + skip];
      unsigned char low = 0x80, high = 0xBF;
      if (skip == 1) {
        if (b0 == 0xE0) low = 0xA0;
        if (b0 == 0xED) high = 0x9F;
        if (b0 == 0xF0) low = 0x90;
        if (b0 == 0xF4) high = 0x8F;
      }
      if (b < low || b > high) break;
      ++skip;
    }
    append_utf8(out, U'\uFFFD');
    i += skip;
  }
  return out;
}

}  // namespace lmkit::text
