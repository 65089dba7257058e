// Floats as text that reads back to the same bits: the shortest decimal form (std::to_chars
// without a precision), so a value stored in a checkpoint's metadata or an ARPA file and read
// again is the value that was written (std::to_string's six decimals would turn 1e-7 into 0).
// Both ways ignore the C locale, which could otherwise want "0,1".
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

namespace lmkit {

/// Appends the shortest decimal form of `value` that reads back as the same float.
inline void append_shortest(std::string& out, float value) {
  char number[32];
  const auto end = std::to_chars(number, number + sizeof number, value).ptr;
  out.append(number, end);
}

/// The shortest decimal form of `value` that reads back as the same float ("1e-07", "0.1").
inline std::string shortest_text(float value) {
  std::string out;
  append_shortest(out, value);
  return out;
}

/// The float that the whole of `text` spells (decimal or exponent form), or nothing: an empty
/// text, trailing characters ("0.2x") and out-of-range values are not floats.
inline std::optional<float> parse_float(std::string_view text) {
  float value = 0.0f;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace lmkit
