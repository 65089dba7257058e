// An n-gram as a hash-map key: its word ids packed into a string of bytes (4 per word).
#pragma once

#include <cstring>
#include <span>
#include <string>

#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

using ngram_key = std::string;

inline ngram_key make_key(std::span<const word_id> words) {
  ngram_key key(words.size() * sizeof(word_id), '\0');
  if (!words.empty()) std::memcpy(key.data(), words.data(), key.size());
  return key;
}

inline std::size_t key_order(const ngram_key& key) { return key.size() / sizeof(word_id); }

inline word_id key_word(const ngram_key& key, std::size_t i) {
  word_id w;
  std::memcpy(&w, key.data() + i * sizeof(word_id), sizeof(word_id));
  return w;
}

/// The key without its first word (the lower-order suffix) or without its last (the context).
inline ngram_key key_suffix(const ngram_key& key) { return key.substr(sizeof(word_id)); }
inline ngram_key key_context(const ngram_key& key) { return key.substr(0, key.size() - sizeof(word_id)); }

}  // namespace lmkit::ngram
