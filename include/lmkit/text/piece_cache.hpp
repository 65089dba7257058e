// A small direct-mapped cache from a pre-tokenised piece to its ids, kept for one encode call.
// Words repeat (Zipf's law): in a megabyte of prose most pieces that need merging have been merged
// before, and a hit costs one cache line instead of dozens of hash look-ups.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "lmkit/text/token_bytes_table.hpp"

namespace lmkit::text {

class piece_cache {
 public:
  static constexpr std::size_t max_piece = 30;  // longer pieces are not cached
  static constexpr std::size_t max_ids = 8;     // nor pieces of more ids

  /// A cache sized for a text of `text_bytes`: small texts get a small table (it is zeroed).
  explicit piece_cache(std::size_t text_bytes = 0) : text_bytes_(text_bytes) {}

  /// The ids cached for `piece` (with hash `hash`), or an empty span.
  std::span<const token_id> find(std::string_view piece, std::uint64_t hash) const {
    if (entries_.empty() || piece.size() > max_piece) return {};
    const entry& e = entries_[hash & (entries_.size() - 1)];
    if (e.hash != hash || e.length != piece.size() || std::memcmp(e.piece, piece.data(), piece.size()) != 0) return {};
    return {e.ids, e.count};
  }

  void store(std::string_view piece, std::uint64_t hash, std::span<const token_id> ids) {
    if (piece.size() > max_piece || ids.size() > max_ids || ids.empty()) return;
    if (entries_.empty()) {
      // One entry per 64 bytes of text, 64 to 4096 entries (at most ~300 KB: stays in L2).
      const std::size_t want = std::clamp<std::size_t>(text_bytes_ / 64, 64, 4096);
      std::size_t size = 64;
      while (size < want) size *= 2;
      entries_.resize(size);
    }
    entry& e = entries_[hash & (entries_.size() - 1)];
    e.hash = hash;
    e.length = std::uint8_t(piece.size());
    e.count = std::uint8_t(ids.size());
    std::memcpy(e.piece, piece.data(), piece.size());
    std::copy(ids.begin(), ids.end(), e.ids);
  }

 private:
  struct entry {
    std::uint64_t hash = 0;
    std::uint8_t length = 0, count = 0;
    char piece[max_piece];
    token_id ids[max_ids];
  };
  std::size_t text_bytes_;
  std::vector<entry> entries_;
};

}  // namespace lmkit::text
