// A tokenizer whose kind a file decides (a GGUF model, a tokenizer.json): SentencePiece-style or
// byte-level BPE. Use std::visit to call it; both alternatives satisfy lmkit::text::tokenizer.
#pragma once

#include <variant>

#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/sentencepiece_tokenizer.hpp"

namespace lmkit::text {

using any_tokenizer = std::variant<sentencepiece_tokenizer, bpe_tokenizer>;

}  // namespace lmkit::text
