// Two-way map between token ids and the byte strings they stand for: bytes -> id by open-addressing
// hash (the question BPE asks millions of times), id -> bytes by offset into one arena (decoding).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"

namespace lmkit::text {

using lmkit::token_id;

namespace detail {

/// The first min(8, n) bytes of `p` as an integer (zero above), read without going past p + n.
inline std::uint64_t load_head(const char* p, std::size_t n) {
  std::uint64_t w = 0;
  if (n >= 8) {
    std::memcpy(&w, p, 8);
  } else if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);  // overlaps lo when n < 8
    w = lo | (std::uint64_t(hi) << (8 * (n - 4)));
  } else if (n > 0) {
    w = std::uint64_t(static_cast<unsigned char>(p[0])) | std::uint64_t(static_cast<unsigned char>(p[n / 2])) << (8 * (n / 2)) |
        std::uint64_t(static_cast<unsigned char>(p[n - 1])) << (8 * (n - 1));
  }
  return w;
}

/// A fast 64-bit hash of a short byte string given its head (load_head): 8 bytes at a time,
/// multiply-xorshift mixing.
inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t head) {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = (s.size() * k) ^ head;
  h *= k;
  h ^= h >> 29;
  for (std::size_t i = 8; i < s.size(); i += 8) {
    const std::size_t n = std::min<std::size_t>(8, s.size() - i);
    h = (h ^ load_head(s.data() + i, n)) * k;
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
    // Ids index arrays: an id far beyond the tokens seen so far (a damaged file's "rank 4000000000")
    // would make them gigabytes. Real vocabularies are dense; 4M of slack covers any order of adding.
    require<argument_error>(id < 2 * count_ + (std::size_t(1) << 22), "token id ", id, " is far beyond the ", count_,
                            " tokens so far: ids must be (nearly) dense");
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
    max_length_ = std::max(max_length_, bytes.size());
    ++count_;
    if (count_ * 2 > slots_.size()) grow();
    insert_slot(id);
  }

  /// The id whose bytes are `bytes`, or `none`.
  token_id find(std::string_view bytes) const {
    if (slots_.empty() || bytes.size() > max_length_) return none;
    const std::uint64_t head = detail::load_head(bytes.data(), bytes.size());
    const std::size_t mask = slots_.size() - 1;
    // The slot holds a token's length and first eight bytes: most questions BPE asks ("is this
    // pair a token?") are settled there, without touching the bytes kept elsewhere in the arena.
    for (std::size_t s = detail::hash_bytes(bytes, head) & mask;; s = (s + 1) & mask) {
      const slot& here = slots_[s];
      if (here.id == none) return none;
      if (here.head == head && here.length == bytes.size() &&
          (bytes.size() <= 8 ||
           std::memcmp(arena_.data() + start_[here.id] + 8, bytes.data() + 8, bytes.size() - 8) == 0))
        return here.id;
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

  struct slot {
    std::uint64_t head;    // the first eight bytes, zero-padded
    std::uint32_t length;  // in bytes
    token_id id;           // `none` when empty
  };

  void insert_slot(token_id id) {
    const std::string_view b = bytes(id);
    const std::uint64_t head = detail::load_head(b.data(), b.size());
    const std::size_t mask = slots_.size() - 1;
    std::size_t s = detail::hash_bytes(b, head) & mask;
    while (slots_[s].id != none) s = (s + 1) & mask;
    slots_[s] = {head, std::uint32_t(b.size()), id};
  }
  void grow() {
    slots_.assign(slots_.empty() ? 1024 : slots_.size() * 2, slot{0, 0, none});
    for (token_id id = 0; id < start_.size(); ++id)
      if (start_[id] != absent) insert_slot(id);
  }

  std::string arena_;
  std::vector<std::size_t> start_;
  std::vector<std::uint32_t> length_;
  std::vector<slot> slots_;  // power of two, at most half full
  std::size_t count_ = 0;
  std::size_t max_length_ = 0;
};

}  // namespace lmkit::text
