// GPT-2's spelling of bytes as printable characters, used by its encoder.json and vocab.bpe and by
// Hugging Face's byte-level tokenizer.json files: the 188 bytes that are printable Latin-1 stand
// for themselves; the others (controls, space, DEL, NBSP, soft hyphen) become U+0100 upward, in
// byte order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

namespace detail {

inline constexpr bool byte_is_printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

inline constexpr std::array<char16_t, 256> byte_to_char = [] {
  std::array<char16_t, 256> t{};
  char16_t extra = 0x100;
  for (int b = 0; b < 256; ++b) t[b] = byte_is_printable(b) ? char16_t(b) : extra++;
  return t;
}();

}  // namespace detail

/// The character that stands for byte `b`.
inline char32_t byte_as_char(unsigned char b) { return detail::byte_to_char[b]; }

/// `bytes` spelled in GPT-2's printable characters.
inline std::string bytes_to_printable(std::string_view bytes) {
  std::string out;
  for (const char b : bytes) append_utf8(out, byte_as_char(static_cast<unsigned char>(b)));
  return out;
}

/// The bytes a printable spelling stands for; a character outside the map is a format_error
/// naming `what`.
inline std::string printable_to_bytes(std::string_view text, std::string_view what) {
  require_utf8(text, what);
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const decoded_code_point c = decode_utf8(text.data() + i);
    int byte = -1;
    if (c.value < 0x100 && detail::byte_is_printable(int(c.value))) {
      byte = int(c.value);
    } else if (c.value >= 0x100 && c.value < 0x100 + 68) {
      for (int b = 0; b < 256; ++b)
        if (detail::byte_to_char[b] == c.value) byte = b;
    }
    require<format_error>(byte >= 0, what, ": character U+", std::hex, std::uint32_t(c.value),
                          " does not stand for a byte in GPT-2's byte-level spelling");
    out.push_back(char(byte));
    i += c.size;
  }
  return out;
}

}  // namespace lmkit::text
