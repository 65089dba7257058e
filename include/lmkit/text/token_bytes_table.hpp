// Two-way map between token ids and the byte strings they stand for: bytes -> id by open-addressing
// hash (the question BPE asks millions of times), id -> bytes by offset into one arena (decoding).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"

namespace lmkit::text {

using token_id = std::uint32_t;

namespace detail {

/// A fast 64-bit hash of short byte strings: 8 bytes at a time, multiply-xorshift mixing.
inline std::uint64_t hash_bytes(std::string_view s) {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = s.size() * k;
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

}  // namespace detail

class token_bytes_table {
 public:
  static constexpr token_id none = ~token_id(0);

  token_bytes_table() = default;

  /// Adds `bytes` as token `id`. Throws argument_error if either is already present.
  void add(std::string_view bytes, token_id id) {
    require<argument_error>(id != none, "token id ", id, " is reserved");
    require<argument_error>(!bytes.empty(), "token ", id, " has no bytes");
    if (id >= start_.size()) {
      start_.resize(std::size_t(id) + 1, absent);
      length_.resize(std::size_t(id) + 1, 0);
    }
    require<argument_error>(start_[id] == absent, "token id ", id, " appears twice");
    const token_id existing = find(bytes);
    require<argument_error>(existing == none, "the bytes of token ", id, " are already token ", existing);
    start_[id] = arena_.size();
    length_[id] = std::uint32_t(bytes.size());
    arena_.append(bytes);
    ++count_;
    if (count_ * 2 > slots_.size()) grow();
    insert_slot(id);
  }

  /// The id whose bytes are `bytes`, or `none`.
  token_id find(std::string_view bytes) const {
    if (slots_.empty()) return none;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t s = detail::hash_bytes(bytes) & mask;; s = (s + 1) & mask) {
      const token_id id = slots_[s];
      if (id == none) return none;
      if (length_[id] == bytes.size() && std::memcmp(arena_.data() + start_[id], bytes.data(), bytes.size()) == 0)
        return id;
    }
  }

  bool contains(token_id id) const { return id < start_.size() && start_[id] != absent; }
  /// The bytes of token `id`; the id must be contained.
  std::string_view bytes(token_id id) const { return {arena_.data() + start_[id], length_[id]}; }
  /// One past the largest id.
  std::size_t id_bound() const { return start_.size(); }
  std::size_t size() const { return count_; }

 private:
  static constexpr std::size_t absent = ~std::size_t(0);

  void insert_slot(token_id id) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t s = detail::hash_bytes(bytes(id)) & mask;
    while (slots_[s] != none) s = (s + 1) & mask;
    slots_[s] = id;
  }
  void grow() {
    slots_.assign(slots_.empty() ? 1024 : slots_.size() * 2, none);
    for (token_id id = 0; id < start_.size(); ++id)
      if (start_[id] != absent) insert_slot(id);
  }

  std::string arena_;
  std::vector<std::size_t> start_;
  std::vector<std::uint32_t> length_;
  std::vector<token_id> slots_;  // power of two, at most half full
  std::size_t count_ = 0;
};

}  // namespace lmkit::text
