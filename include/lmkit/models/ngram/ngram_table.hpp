// A hash table from n-grams of one order to values: the n-grams' word ids lie back to back in one
// array (n per entry, in insertion order) and an open-addressing index of 32-bit slots points into
// it. No allocation per n-gram, exact keys, iteration in insertion order. The three arrays are read
// through spans, so a table can also be a read-only view of arrays in a mapped file.
#pragma once

#include <bit>
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

  // Copies and moves re-point the views at the new object's own arrays.
  ngram_table(const ngram_table& o) : order_(o.order_), words_(o.words_), values_(o.values_), slots_(o.slots_), mask_(o.mask_),
                                      mapped_(o.mapped_) {
    mapped_ ? copy_views(o) : refresh_views();
  }
  ngram_table(ngram_table&& o) noexcept
      : order_(o.order_), words_(std::move(o.words_)), values_(std::move(o.values_)), slots_(std::move(o.slots_)),
        mask_(o.mask_), mapped_(o.mapped_) {
    mapped_ ? copy_views(o) : refresh_views();
  }
  ngram_table& operator=(ngram_table o) noexcept {
    order_ = o.order_, words_ = std::move(o.words_), values_ = std::move(o.values_), slots_ = std::move(o.slots_);
    mask_ = o.mask_, mapped_ = o.mapped_;
    mapped_ ? copy_views(o) : refresh_views();
    return *this;
  }

  /// A read-only table over arrays that live elsewhere (a mapped file), checked so that no lookup
  /// can read outside them: `slots` is a power of two long, has an empty slot, and points only at
  /// existing entries. Throws format_error otherwise.
  static ngram_table view(std::size_t order, std::span<const word_id> words, std::span<const Value> values,
                          std::span<const std::uint32_t> slots) {
    require<format_error>(order >= 1 && words.size() == values.size() * order, "n-gram table of order ", order, ": ",
                          words.size(), " word ids for ", values.size(), " entries");
    if (values.empty() && slots.empty()) {  // an order with no n-grams (never hashed into)
      ngram_table t(order);
      t.mapped_ = true;
      return t;
    }
    require<format_error>(std::has_single_bit(slots.size()) && slots.size() > values.size(), "n-gram table of order ",
                          order, ": ", slots.size(), " slots for ", values.size(), " entries");
    std::size_t empty = 0;
    for (const std::uint32_t s : slots) {
      require<format_error>(s <= values.size(), "n-gram table of order ", order, ": a slot points at entry ", s, " of ",
                            values.size());
      empty += s == 0;
    }
    require<format_error>(empty > 0, "n-gram table of order ", order, ": no empty slot");
    ngram_table t(order);
    t.words_view_ = words, t.values_view_ = values, t.slots_view_ = slots;
    t.mask_ = slots.size() - 1;
    t.mapped_ = true;
    return t;
  }

  std::size_t order() const { return order_; }
  std::size_t size() const { return values_view_.size(); }
  bool empty() const { return values_view_.empty(); }

  void reserve(std::size_t n) {
    writable();
    words_.reserve(n * order_);
    values_.reserve(n);
    if (n * 4 > slots_.size() * 3) rehash(n);
    refresh_views();
  }

  /// The value for `words`, inserted (value-initialised) if absent.
  Value& operator[](std::span<const word_id> words) {
    writable();
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
    refresh_views();
    return values_.back();
  }

  /// The position of `words` in insertion order, or size() when absent.
  std::size_t index_of(std::span<const word_id> words) const {
    if (words.size() != order_ || slots_view_.empty()) return size();
    for (std::size_t slot = home(words); slots_view_[slot] != 0; slot = (slot + 1) & mask_)
      if (same(slots_view_[slot] - 1, words)) return slots_view_[slot] - 1;
    return size();
  }

  const Value* find(std::span<const word_id> words) const {
    const std::size_t i = index_of(words);
    return i == size() ? nullptr : &values_view_[i];
  }
  Value* find(std::span<const word_id> words) {
    writable();
    const std::size_t i = index_of(words);
    return i == size() ? nullptr : &values_[i];
  }

  /// The n-gram and value at position i of insertion order.
  std::span<const word_id> words(std::size_t i) const { return words_view_.subspan(i * order_, order_); }
  const Value& value(std::size_t i) const { return values_view_[i]; }
  Value& value(std::size_t i) {
    writable();
    return values_[i];
  }

  /// The three arrays, for writing them to a file.
  std::span<const word_id> all_words() const { return words_view_; }
  std::span<const Value> all_values() const { return values_view_; }
  std::span<const std::uint32_t> all_slots() const { return slots_view_; }

 private:
  void writable() const { require<argument_error>(!mapped_, "ngram_table: a table mapped from a file is read-only"); }
  void check(std::span<const word_id> words) const {
    require<argument_error>(words.size() == order_, "ngram_table: a ", words.size(), "-gram in a table of ", order_,
                            "-grams");
  }
  std::size_t home(std::span<const word_id> words) const { return hash_words(words) & mask_; }
  bool same(std::size_t i, std::span<const word_id> words) const {
    const word_id* stored = words_view_.data() + i * order_;
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
    refresh_views();
    for (std::size_t i = 0; i < values_.size(); ++i) {
      std::size_t slot = home(words(i));
      while (slots_[slot] != 0) slot = (slot + 1) & mask_;
      slots_[slot] = static_cast<std::uint32_t>(i + 1);
    }
  }
  void refresh_views() { words_view_ = words_, values_view_ = values_, slots_view_ = slots_; }
  void copy_views(const ngram_table& o) {
    words_view_ = o.words_view_, values_view_ = o.values_view_, slots_view_ = o.slots_view_;
  }

  std::size_t order_;
  std::vector<word_id> words_;
  std::vector<Value> values_;
  std::vector<std::uint32_t> slots_;  // 0 = empty, else 1 + index into values_
  std::size_t mask_ = 0;
  bool mapped_ = false;
  std::span<const word_id> words_view_;
  std::span<const Value> values_view_;
  std::span<const std::uint32_t> slots_view_;
};

}  // namespace lmkit::ngram
