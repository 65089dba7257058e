// Floats as text that reads back to the same bits: the shortest decimal form (std::to_chars
// without a precision), so a value stored in a checkpoint's metadata or an ARPA file and read
// again is the value that was written (std::to_string's six decimals would turn 1e-7 into 0).
#pragma once

#include <charconv>
#include <string>

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

}  // namespace lmkit
