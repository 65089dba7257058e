// Numbers from the command line (and from checkpoint metadata), with the flag's name in every
// complaint: std::stoul would say only "stoul", and would read "-5" as 2^64 - 5.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

#include <lmkit/core/error.hpp>

namespace lmkit::cli {

/// Digits only, and within 64 bits; nothing else.
inline std::optional<std::uint64_t> parse_whole(std::string_view text) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return n;
}

/// A decimal number that is neither infinite nor NaN.
inline std::optional<float> parse_finite(std::string_view text) {
  float x = 0.0f;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(x)) return std::nullopt;
  return x;
}

/// `flag`'s value as a whole number, or an argument_error "TOOL: FLAG wants a whole number, got 'TEXT'".
inline std::uint64_t whole_number(std::string_view tool, std::string_view flag, std::string_view text) {
  const auto n = parse_whole(text);
  require<argument_error>(n.has_value(), tool, ": ", flag, " wants a whole number, got '", text, "'");
  return *n;
}

inline float finite_number(std::string_view tool, std::string_view flag, std::string_view text) {
  const auto x = parse_finite(text);
  require<argument_error>(x.has_value(), tool, ": ", flag, " wants a finite number, got '", text, "'");
  return *x;
}

}  // namespace lmkit::cli
