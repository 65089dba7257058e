// A small byte-level BPE vocabulary for the tokenizer fuzz targets and their seeds: every byte,
// then a few dozen merges over English, white space, digits and Hangul, so that pieces merge.
#pragma once

#include <string>
#include <vector>

#include "lmkit/io/base64.hpp"
#include "lmkit/text/token_bytes_table.hpp"

namespace lmkit::fuzz {

inline std::vector<std::string> small_bpe_tokens() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
  for (const char* t : {"th", "he", "the", " t", " the", "in", "ing", "an", "and", " and", "  ", "    ", "\n\n", "\r\n",
                        "er", "re", "'s", "12", "123", "00", "\xED\x95", "\xED\x95\x9C", "\xEA\xB5", "\xEA\xB5\xAD",
                        "\xED\x95\x9C\xEA\xB5\xAD", "==", "====", "ab", "abab", "ababab", " a", "aa", "aaaa"})
    tokens.emplace_back(t);
  return tokens;
}

/// The same vocabulary as a tiktoken rank file.
inline std::string small_bpe_rank_file() {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  const auto tokens = small_bpe_tokens();
  for (std::size_t rank = 0; rank < tokens.size(); ++rank) {
    const std::string& t = tokens[rank];
    for (std::size_t i = 0; i < t.size(); i += 3) {
      std::uint32_t v = 0;
      const std::size_t n = std::min<std::size_t>(3, t.size() - i);
      for (std::size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<unsigned char>(t[i + k]) : 0u);
      for (std::size_t k = 0; k < 4; ++k) out += k <= n ? alphabet[(v >> (18 - 6 * k)) & 63] : '=';
    }
    out += ' ' + std::to_string(rank) + '\n';
  }
  return out;
}

inline text::token_bytes_table small_bpe_table() {
  text::token_bytes_table table;
  const auto tokens = small_bpe_tokens();
  for (std::size_t rank = 0; rank < tokens.size(); ++rank) table.add(tokens[rank], text::token_id(rank));
  return table;
}

}  // namespace lmkit::fuzz
