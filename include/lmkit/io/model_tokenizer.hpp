// The tokenizer that goes with a model file: the one a GGUF file carries, or the one beside a
// Hugging Face folder (tokenizer.json, tokenizer.model, GPT-2's encoder.json + vocab.bpe) or a
// llama2.c checkpoint (tokenizer.bin) — or a tokenizer file named explicitly, whose kind its name
// tells. And the convention for encoding a prompt for such a model.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/io/gguf.hpp"
#include "lmkit/io/gguf_tokenizer.hpp"
#include "lmkit/io/gpt2_bpe.hpp"
#include "lmkit/io/hf_tokenizer.hpp"
#include "lmkit/io/llama2c_tokenizer.hpp"
#include "lmkit/io/sentencepiece_model.hpp"
#include "lmkit/models/load_decoder.hpp"
#include "lmkit/text/any_tokenizer.hpp"

namespace lmkit::io {

/// A tokenizer file of any kind lmkit reads, recognised by its name: *.json (tokenizer.json),
/// encoder.json (+ vocab.bpe beside it), *.model (SentencePiece), *.gguf, else llama2.c's format.
inline text::any_tokenizer read_tokenizer_file(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  if (name == "encoder.json") return read_gpt2_bpe(p, p.parent_path() / "vocab.bpe");
  if (p.extension() == ".json") return read_hf_tokenizer(p);
  if (p.extension() == ".model") return read_sentencepiece_model(p);
  if (p.extension() == ".gguf") return tokenizer_from_gguf(gguf_file(p));
  return read_llama2c_tokenizer(p);
}

/// The tokenizer files looked for beside a model, in order of preference (encoder.json needs its
/// vocab.bpe too).
inline constexpr std::array<const char*, 4> tokenizer_file_names{"tokenizer.json", "tokenizer.model", "encoder.json",
                                                                 "tokenizer.bin"};

/// The tokenizer for the model at `model`: `named` when given, else the GGUF's own or the first of
/// tokenizer_file_names in the model's folder.
inline text::any_tokenizer tokenizer_for_model(const std::filesystem::path& model, const std::filesystem::path& named = {}) {
  namespace fs = std::filesystem;
  if (!named.empty()) return read_tokenizer_file(named);
  if (models::detect_model_format(model) == models::model_format::gguf) return read_tokenizer_file(model);
  const fs::path folder = fs::is_directory(model) ? model : model.parent_path();
  for (const char* candidate : tokenizer_file_names)
    if (fs::exists(folder / candidate)) return read_tokenizer_file(folder / candidate);
  throw argument_error(lmkit::detail::concat("no tokenizer found beside ", model.string(),
                                             " (tokenizer.json, tokenizer.model, encoder.json, tokenizer.bin)"));
}

/// A prompt's ids as the model family expects them: SentencePiece (Llama) prompts start with BOS
/// when the tokenizer has one; byte-level BPE (GPT-2) prompts start with the text itself.
inline std::vector<text::token_id> encode_prompt(const text::any_tokenizer& tokenizer, std::string_view prompt) {
  return std::visit(
      [&](const auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, text::sentencepiece_tokenizer>)
          return t.encode(prompt, {.add_bos = t.bos_id().has_value()});
        else
          return t.encode(prompt);
      },
      tokenizer);
}

/// The end-of-text token: SentencePiece's EOS, or GPT-2's <|endoftext|> when the vocabulary has it.
inline std::optional<text::token_id> end_of_text(const text::any_tokenizer& tokenizer) {
  return std::visit(
      [](const auto& t) -> std::optional<text::token_id> {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, text::sentencepiece_tokenizer>) return t.eos_id();
        else return t.special_id("<|endoftext|>");
      },
      tokenizer);
}

}  // namespace lmkit::io
