// The tokenizer a GGUF file carries in its tokenizer.ggml.* metadata: "llama" is SentencePiece BPE
// (pieces, scores, types, special ids), "gpt2" is byte-level BPE (tokens in GPT-2's printable
// spelling, merges, and a pre-tokeniser name that llama.cpp maps to a pattern).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/io/gguf.hpp"
#include "lmkit/text/any_tokenizer.hpp"
#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/byte_unicode.hpp"
#include "lmkit/text/sentencepiece_tokenizer.hpp"

namespace lmkit::io {

using gguf_tokenizer = text::any_tokenizer;

namespace detail {

inline std::optional<text::token_id> optional_id(const gguf_file& f, const char* key) {
  if (!f.contains(key)) return std::nullopt;
  const auto& v = f.at(key).value;
  if (const auto* u = std::get_if<std::uint64_t>(&v); u && *u < 0xFFFFFFFFu) return text::token_id(*u);
  if (const auto* s = std::get_if<std::int64_t>(&v); s && *s >= 0 && *s < 0xFFFFFFFF) return text::token_id(*s);
  return std::nullopt;  // -1 / 0xFFFFFFFF: none
}

inline std::vector<std::string> string_array(const gguf_file& f, const char* key) {
  const auto& a = f.get_array(key);
  require<format_error>(a.element_type == gguf_type::string, f.source(), ": ", key, " must be an array of strings");
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const auto& v : a.items) out.push_back(std::get<std::string>(v.value));
  return out;
}

/// tokenizer.ggml.scores / token_type, or `fallback` for every token when absent.
template <class T>
std::vector<T> numeric_array(const gguf_file& f, const char* key, std::size_t count, T fallback) {
  if (!f.contains(key)) return std::vector<T>(count, fallback);
  const auto& a = f.get_array(key);
  require<format_error>(a.items.size() == count, f.source(), ": ", key, " has ", a.items.size(), " entries for ", count,
                        " tokens");
  std::vector<T> out;
  for (const auto& v : a.items) {
    if (const auto* d = std::get_if<double>(&v.value)) out.push_back(T(*d));
    else if (const auto* s = std::get_if<std::int64_t>(&v.value)) out.push_back(T(*s));
    else if (const auto* u = std::get_if<std::uint64_t>(&v.value)) out.push_back(T(*u));
    else throw format_error(lmkit::detail::concat(f.source(), ": ", key, " must hold numbers"));
  }
  return out;
}

}  // namespace detail

inline gguf_tokenizer tokenizer_from_gguf(const gguf_file& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  const auto tokens = detail::string_array(f, "tokenizer.ggml.tokens");
  const auto types = detail::numeric_array<std::int64_t>(f, "tokenizer.ggml.token_type", tokens.size(), 1);
  try {
    if (model == "llama") {
      const auto scores = detail::numeric_array<float>(f, "tokenizer.ggml.scores", tokens.size(), 0.0f);
      std::vector<text::sentencepiece_piece> pieces;
      int byte_pieces = 0;
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        require<format_error>(types[i] >= 1 && types[i] <= 6, "token ", i, " has type ", types[i]);
        pieces.push_back({tokens[i], scores[i], text::piece_type(types[i])});
        byte_pieces += types[i] == 6;
      }
      text::sentencepiece_options options;
      options.byte_fallback = byte_pieces == 256;
      options.add_dummy_prefix =
          f.contains("tokenizer.ggml.add_space_prefix") ? f.get_bool("tokenizer.ggml.add_space_prefix") : true;
      options.unk_id = detail::optional_id(f, "tokenizer.ggml.unknown_token_id");
      options.bos_id = detail::optional_id(f, "tokenizer.ggml.bos_token_id");
      options.eos_id = detail::optional_id(f, "tokenizer.ggml.eos_token_id");
      // llama.cpp finds user-defined tokens in any text, control ones with parse_special, before
      // tokenizing the text between them, each stretch with its own space prefix.
      for (std::size_t i = 0; i < tokens.size(); ++i)
        if ((types[i] == 3 || types[i] == 4) && !tokens[i].empty())
          options.added_tokens.push_back({tokens[i], text::token_id(i)});
      return text::sentencepiece_tokenizer(std::move(pieces), options);
    }
    if (model == "gpt2") {
      // llama.cpp's names for the pre-tokenising patterns lmkit implements.
      const std::string pre = f.contains("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
      text::split_pattern pattern;
      if (pre == "default" || pre == "gpt-2" || pre == "gpt2") pattern = text::split_pattern::gpt2;
      else if (pre == "llama-bpe" || pre == "llama3" || pre == "dbrx") pattern = text::split_pattern::cl100k_base;
      else if (pre == "gpt-4o") pattern = text::split_pattern::o200k_base;
      else throw format_error(lmkit::detail::concat("pre-tokeniser '", pre, "' is not one lmkit implements"));
      text::token_bytes_table vocab;
      std::vector<text::special_token> specials;
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (types[i] == 3 || types[i] == 4) {  // control and user-defined tokens are matched whole
          specials.push_back({tokens[i], text::token_id(i)});
          continue;
        }
        vocab.add(text::printable_to_bytes(tokens[i], lmkit::detail::concat("token ", i)), text::token_id(i));
      }
      std::vector<std::pair<text::token_id, text::token_id>> merges;
      for (const auto& m : detail::string_array(f, "tokenizer.ggml.merges")) {
        const std::size_t space = m.find(' ');
        require<format_error>(space != std::string::npos, "merge '", m, "' is not 'LEFT RIGHT'");
        const auto left = vocab.find(text::printable_to_bytes(m.substr(0, space), "merge"));
        const auto right = vocab.find(text::printable_to_bytes(m.substr(space + 1), "merge"));
        require<format_error>(left != text::token_bytes_table::none && right != text::token_bytes_table::none, "merge '",
                              m, "' names a token that is not in the vocabulary");
        merges.emplace_back(left, right);
      }
      return text::bpe_tokenizer(std::move(vocab), merges, pattern, std::move(specials));
    }
  } catch (const argument_error& e) {
    throw format_error(lmkit::detail::concat(f.source(), ": tokenizer: ", e.what()));
  } catch (const format_error& e) {
    throw format_error(lmkit::detail::concat(f.source(), ": tokenizer: ", e.what()));
  }
  throw format_error(lmkit::detail::concat(f.source(), ": tokenizer.ggml.model '", model,
                                           "' is not one lmkit implements (llama, gpt2)"));
}

}  // namespace lmkit::io
