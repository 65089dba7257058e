// GPT-2's own tokenizer files: encoder.json ({printable token: id}) and vocab.bpe (a "#version"
// line, then one merge "left right" per line, highest priority first), both in GPT-2's printable
// spelling of bytes. Loaded as a merge-list BPE with GPT-2's pattern; <|endoftext|> is special.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/io/text_lines.hpp"
#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/byte_unicode.hpp"

namespace lmkit::io {

inline text::bpe_tokenizer parse_gpt2_bpe(std::string_view encoder_json, std::string_view vocab_bpe,
                                          std::string_view encoder_source, std::string_view merges_source) {
  nlohmann::json encoder;
  try {
    encoder = nlohmann::json::parse(encoder_json);
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat(encoder_source, ": not valid JSON: ", e.what()));
  }
  require<format_error>(encoder.is_object(), encoder_source, ": expected an object {token: id}");
  text::token_bytes_table vocab;
  std::vector<text::special_token> specials;
  for (const auto& [token, id] : encoder.items()) {
    require<format_error>(id.is_number_unsigned() && id.get<std::uint64_t>() < text::token_bytes_table::none,
                          encoder_source, ": token ", token, " needs a non-negative id");
    const auto value = text::token_id(id.get<std::uint64_t>());
    if (token == "<|endoftext|>") {
      specials.push_back({token, value});
      continue;
    }
    const std::string bytes = text::printable_to_bytes(token, lmkit::detail::concat(encoder_source, ": token ", value));
    try {
      vocab.add(bytes, value);
    } catch (const argument_error& e) {
      throw format_error(lmkit::detail::concat(encoder_source, ": ", e.what()));
    }
  }

  std::vector<std::pair<text::token_id, text::token_id>> merges;
  for_each_line(vocab_bpe, [&](std::string_view line, std::size_t line_number) {
    if (line.empty() || (line_number == 1 && line.starts_with("#version"))) return;
    const std::size_t space = line.find(' ');
    require<format_error>(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                              line.find(' ', space + 1) == std::string_view::npos,
                          merges_source, ":", line_number, ": expected 'LEFT RIGHT'");
    auto id_of = [&](std::string_view printable) {
      const auto where = lmkit::detail::concat(merges_source, ":", line_number);
      const text::token_id id = vocab.find(text::printable_to_bytes(printable, where));
      require<format_error>(id != text::token_bytes_table::none, where, ": '", printable, "' is not in ", encoder_source);
      return id;
    };
    merges.emplace_back(id_of(line.substr(0, space)), id_of(line.substr(space + 1)));
  });
  try {
    return text::bpe_tokenizer(std::move(vocab), merges, text::split_pattern::gpt2, std::move(specials));
  } catch (const format_error& e) {
    throw format_error(lmkit::detail::concat(merges_source, ": ", e.what()));
  }
}

inline text::bpe_tokenizer read_gpt2_bpe(const std::filesystem::path& encoder_json, const std::filesystem::path& vocab_bpe) {
  const mapped_file encoder(encoder_json), merges(vocab_bpe);
  return parse_gpt2_bpe({reinterpret_cast<const char*>(encoder.data()), encoder.size()},
                        {reinterpret_cast<const char*>(merges.data()), merges.size()}, encoder_json.string(),
                        vocab_bpe.string());
}

}  // namespace lmkit::io
