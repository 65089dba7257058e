// tiktoken's files: a rank file has one `base64-bytes rank` line per token; an encoding adds the
// pre-tokenising pattern and its special tokens. The three OpenAI encodings are known by name; any
// other comes with a JSON description ({"pat_str": ..., "special_tokens": {text: id}}).
#pragma once

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/error.hpp"
#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/io/base64.hpp"
#include "lmkit/io/text_lines.hpp"
#include "lmkit/text/bpe_tokenizer.hpp"

namespace lmkit::io {

/// What an encoding adds to its rank file.
struct tiktoken_encoding {
  text::split_pattern pattern;
  std::vector<text::special_token> specials;
};

/// gpt2 (r50k_base), cl100k_base, o200k_base; another name is an argument_error.
inline tiktoken_encoding tiktoken_encoding_named(std::string_view name) {
  using text::split_pattern;
  if (name == "gpt2" || name == "r50k_base") return {split_pattern::gpt2, {{"<|endoftext|>", 50256}}};
  if (name == "cl100k_base")
    return {split_pattern::cl100k_base,
            {{"<|endoftext|>", 100257},
             {"<|fim_prefix|>", 100258},
             {"<|fim_middle|>", 100259},
             {"<|fim_suffix|>", 100260},
             {"<|endofprompt|>", 100276}}};
  if (name == "o200k_base") return {split_pattern::o200k_base, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}};
  throw argument_error(lmkit::detail::concat("unknown tiktoken encoding '", name,
                                      "' (lmkit knows gpt2, r50k_base, cl100k_base, o200k_base)"));
}

/// Parses the lines of a rank file; `source` names it in errors ("FILE:LINE: ...").
inline text::token_bytes_table parse_tiktoken_ranks(std::string_view content, std::string_view source) {
  text::token_bytes_table table;
  for_each_line(content, [&](std::string_view line, std::size_t line_number) {
    if (line.empty()) return;
    auto fail = [&](auto&&... why) {
      throw format_error(lmkit::detail::concat(source, ":", line_number, ": ", why...));
    };
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
      fail("expected 'BASE64 RANK', found '", line.substr(0, 80), "'");
    const char* why = "";
    const auto bytes = decode_base64(line.substr(0, space), &why);
    if (!bytes) fail("token is not valid base64 (", why, ")");
    if (bytes->empty()) fail("token has no bytes");
    const std::string_view rank_text = line.substr(space + 1);
    std::uint32_t rank = 0;
    const auto [ptr, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || ptr != rank_text.data() + rank_text.size() || rank == text::token_bytes_table::none)
      fail("rank '", rank_text, "' is not a number below 2^32-1");
    if (table.contains(rank)) fail("rank ", rank, " appears twice");
    if (const auto other = table.find(*bytes); other != text::token_bytes_table::none)
      fail("token has rank ", rank, " but the same bytes already have rank ", other);
    try {
      table.add(*bytes, rank);
    } catch (const argument_error& e) {
      fail(e.what());
    }
  });
  require<format_error>(table.size() > 0, source, ": no tokens");
  return table;
}

inline text::token_bytes_table read_tiktoken_ranks(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_tiktoken_ranks({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

/// An encoding described by JSON: "pat_str" (one of the patterns lmkit implements) and
/// "special_tokens" ({text: id}).
inline tiktoken_encoding parse_tiktoken_encoding_json(std::string_view json_text, std::string_view source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat(source, ": not valid JSON: ", e.what()));
  }
  require<format_error>(j.is_object() && j.contains("pat_str") && j["pat_str"].is_string(), source,
                        ": needs a string \"pat_str\"");
  const auto pattern_text = j["pat_str"].get<std::string>();
  const auto pattern = text::split_pattern_from_regex(pattern_text);
  require<format_error>(pattern.has_value(), source, ": pre-tokenising pattern ", pattern_text,
                        " is not one lmkit implements (gpt2, cl100k_base, o200k_base)");
  tiktoken_encoding encoding{*pattern, {}};
  if (j.contains("special_tokens")) {
    const auto& specials = j["special_tokens"];
    require<format_error>(specials.is_object(), source, ": \"special_tokens\" must be an object");
    for (const auto& [name, id] : specials.items()) {
      require<format_error>(id.is_number_unsigned() && id.get<std::uint64_t>() < text::token_bytes_table::none, source,
                            ": special token ", name, " needs a non-negative id");
      encoding.specials.push_back({name, text::token_id(id.get<std::uint64_t>())});
    }
  }
  return encoding;
}

inline tiktoken_encoding read_tiktoken_encoding_json(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_tiktoken_encoding_json({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

/// Writes a rank file (`base64 rank` per line, by rank) for tokens given by id; atomically.
inline void write_tiktoken_ranks(const std::filesystem::path& path, const std::vector<std::string>& token_bytes) {
  std::string out;
  for (std::size_t rank = 0; rank < token_bytes.size(); ++rank) {
    out += encode_base64(token_bytes[rank]);
    out += ' ';
    out += std::to_string(rank);
    out += '\n';
  }
  write_file_atomically(path, out);
}

/// A tiktoken tokenizer from its rank file and encoding.
inline text::bpe_tokenizer load_tiktoken(const std::filesystem::path& rank_file, tiktoken_encoding encoding) {
  return text::bpe_tokenizer(read_tiktoken_ranks(rank_file), encoding.pattern, std::move(encoding.specials));
}

/// A tiktoken tokenizer from its rank file and the name of an OpenAI encoding.
inline text::bpe_tokenizer load_tiktoken(const std::filesystem::path& rank_file, std::string_view encoding_name) {
  return load_tiktoken(rank_file, tiktoken_encoding_named(encoding_name));
}

}  // namespace lmkit::io
