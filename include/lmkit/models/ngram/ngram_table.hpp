// A hash table from n-grams of one order to values: the n-grams' word ids lie back to back in one
// array (n per entry, in insertion order) and an open-addressing index of 32-bit slots points into
// it. No allocation per n-gram, exact keys, and iteration in insertion order.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

/// 64-bit hash of a sequence of word ids (a multiply-xorshift mix per word).
inline std::uint64_t hash_words(std::span<const word_id> words) {
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ words.size();
  for (const word_id w : words) {
    h ^= w;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 29);
}

template <class Value>
class ngram_table {
 public:
  explicit ngram_table(std::size_t order = 1) : order_(order) {}

  std::size_t order() const { return order_; }
  std::size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }

  void reserve(std::size_t n) {
    words_.reserve(n * order_);
    values_.reserve(n);
    if (n * 4 > slots_.size() * 3) rehash(n);
  }

  /// The value for `words`, inserted (value-initialised) if absent.
  Value& operator[](std::span<const word_id> words) {
    check(words);
    if ((values_.size() + 1) * 4 > slots_.size() * 3) rehash(values_.size() + 1);
    std::size_t slot = home(words);
    while (slots_[slot] != 0) {
      if (same(slots_[slot] - 1, words)) return values_[slots_[slot] - 1];
      slot = (slot + 1) & mask_;
    }
    require<argument_error>(values_.size() < 0xffffffffu, "ngram_table: more than 2^32 - 1 n-grams of order ", order_);
    words_.insert(words_.end(), words.begin(), words.end());
    values_.emplace_back();
    slots_[slot] = static_cast<std::uint32_t>(values_.size());
    return values_.back();
  }

  /// The position of `words` in insertion order, or size() when absent.
  std::size_t index_of(std::span<const word_id> words) const {
    if (words.size() != order_ || slots_.empty()) return size();
    for (std::size_t slot = home(words); slots_[slot] != 0; slot = (slot + 1) & mask_)
      if (same(slots_[slot] - 1, words)) return slots_[slot] - 1;
    return size();
  }

  const Value* find(std::span<const word_id> words) const {
    const std::size_t i = index_of(words);
    return i == size() ? nullptr : &values_[i];
  }
  Value* find(std::span<const word_id> words) { return const_cast<Value*>(std::as_const(*this).find(words)); }

  /// The n-gram and value at position i of insertion order.
  std::span<const word_id> words(std::size_t i) const { return {words_.data() + i * order_, order_}; }
  const Value& value(std::size_t i) const { return values_[i]; }
  Value& value(std::size_t i) { return values_[i]; }

 private:
  void check(std::span<const word_id> words) const {
    require<argument_error>(words.size() == order_, "ngram_table: a ", words.size(), "-gram in a table of ", order_,
                            "-grams");
  }
  std::size_t home(std::span<const word_id> words) const { return hash_words(words) & mask_; }
  bool same(std::size_t i, std::span<const word_id> words) const {
    const word_id* stored = words_.data() + i * order_;
    for (std::size_t k = 0; k < order_; ++k)
      if (stored[k] != words[k]) return false;
    return true;
  }
  void rehash(std::size_t at_least) {
    std::size_t capacity = 16;
    while (capacity * 3 < at_least * 4 + 4) capacity *= 2;
    capacity *= 2;  // stay at most ~3/8 full after growing: short probe chains
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      std::size_t slot = home(words(i));
      while (slots_[slot] != 0) slot = (slot + 1) & mask_;
      slots_[slot] = static_cast<std::uint32_t>(i + 1);
    }
  }

  std::size_t order_;
  std::vector<word_id> words_;
  std::vector<Value> values_;
  std::vector<std::uint32_t> slots_;  // 0 = empty, else 1 + index into values_
  std::size_t mask_ = 0;
};

}  // namespace lmkit::ngram
