// Base64 (RFC 4648, standard alphabet, padded), decoded strictly: a wrong character, length or
// padding is an error rather than a guess.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lmkit {

namespace detail {
inline constexpr std::array<std::int8_t, 256> base64_values = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < alphabet.size(); ++i) t[static_cast<unsigned char>(alphabet[i])] = std::int8_t(i);
  return t;
}();
}  // namespace detail

namespace io {

/// The bytes `text` encodes, or nullopt with `*why` set if it is not canonical padded base64.
inline std::optional<std::string> decode_base64(std::string_view text, const char** why) {
  if (text.size() % 4 != 0) {
    *why = "length is not a multiple of 4";
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t padding = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const int d = k < 4 - padding ? lmkit::detail::base64_values[static_cast<unsigned char>(text[i + k])] : 0;
      if (d < 0) {
        *why = "character outside the base64 alphabet";
        return std::nullopt;
      }
      v = v << 6 | std::uint32_t(d);
    }
    const char bytes[3] = {char(v >> 16), char(v >> 8), char(v)};
    out.append(bytes, 3 - padding);
    // Canonical form: the bits below the last byte are zero.
    if ((padding == 1 && (v & 0xFF) != 0) || (padding == 2 && (v & 0xFFFF) != 0)) {
      *why = "non-zero bits after the last byte";
      return std::nullopt;
    }
  }
  return out;
}

/// `bytes` in padded base64.
inline std::string encode_base64(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out.push_back(k <= n ? alphabet[(v >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

}  // namespace io
}  // namespace lmkit
