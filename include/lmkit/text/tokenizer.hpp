// What every tokenizer offers: text to ids, ids back to text, the number of ids a model's
// embedding needs, and its special tokens. The models, the trainer and the generator take any type
// that satisfies it.
#pragma once

#include <concepts>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/text/special_token.hpp"
#include "lmkit/text/token_bytes_table.hpp"

namespace lmkit::text {

template <class T>
concept tokenizer = requires(const T& t, std::string_view text, std::span<const token_id> ids) {
  { t.encode(text) } -> std::same_as<std::vector<token_id>>;
  { t.decode(ids) } -> std::same_as<std::string>;
  { t.vocab_size() } -> std::convertible_to<std::size_t>;
  { t.special_tokens() } -> std::convertible_to<std::vector<special_token>>;
};

}  // namespace lmkit::text
