// Byte-pair merging of one pre-tokenised piece: start from its initial parts (one per byte for
// byte-level BPE, one per character for SentencePiece) and, while some adjacent pair may merge,
// merge the pair of lowest rank (the leftmost among equal ranks).
//
// Two implementations give the same result. Short pieces (nearly all of them) keep the pair ranks
// in a small array and scan it, as tiktoken does: a few dozen entries fit in a cache line or two.
// Long pieces (a run of 10,000 spaces, a base64 blob) use a heap of candidate pairs over a linked
// list of parts, so the work is O(n log n) instead of the O(n^2) of rescanning after every merge.
#pragma once

#include <algorithm>
#include <cstdint>
#include <queue>
#include <span>
#include <string_view>
#include <vector>

#include "lmkit/text/token_bytes_table.hpp"

namespace lmkit::text {

/// What a ranker says of two adjacent parts: the rank of merging them (lower merges first) and
/// the id of the merged part. `rank == no_merge` when the pair does not merge.
struct bpe_candidate {
  static constexpr std::uint32_t no_merge = ~std::uint32_t(0);
  std::uint32_t rank = no_merge;
  token_id id = 0;
};

/// Two adjacent parts: their ids and the bytes they cover together.
struct bpe_pair {
  token_id left, right;
  std::string_view bytes;
};

/// Reusable scratch memory for bpe_merge, so that encoding a text does not allocate per piece.
/// bpe_merge_parts reads the initial parts from `start` (parts + 1 offsets, the last being the
/// piece's size) and `id` (one per part; `token_bytes_table::none` for a part that is no token).
struct bpe_workspace {
  std::vector<std::uint32_t> start;
  std::vector<token_id> id;
  std::vector<bpe_candidate> candidate;
  std::vector<std::uint32_t> next, prev, version;
  struct heap_entry {
    std::uint32_t rank, left, right, left_version, right_version;
    token_id id;
    bool operator>(const heap_entry& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<heap_entry> heap;
};

/// Pieces of more parts than this are merged with the heap.
inline constexpr std::size_t bpe_heap_threshold = 128;

namespace detail {

template <class Ranker, class Emit>
void bpe_merge_scan(std::string_view piece, std::size_t n, Ranker& rank_of, bpe_workspace& w, Emit& emit) {
  auto& start = w.start;
  auto& id = w.id;
  auto& cand = w.candidate;
  cand.resize(n);
  auto pair_at = [&](std::size_t k) {  // parts k and k+1
    return rank_of(bpe_pair{id[k], id[k + 1], piece.substr(start[k], start[k + 2] - start[k])});
  };
  for (std::size_t k = 0; k + 1 < n; ++k) cand[k] = pair_at(k);
  std::size_t parts = n;
  while (parts > 1) {
    std::size_t best = 0;
    for (std::size_t k = 1; k + 1 < parts; ++k)
      if (cand[k].rank < cand[best].rank) best = k;
    if (cand[best].rank == bpe_candidate::no_merge) break;
    id[best] = cand[best].id;
    // Remove part best+1 (the arrays hold `parts` + 1 starts, `parts` ids, `parts` - 1 pairs).
    start.erase(start.begin() + std::ptrdiff_t(best) + 1);
    id.erase(id.begin() + std::ptrdiff_t(best) + 1);
    cand.erase(cand.begin() + std::ptrdiff_t(best) + 1);
    --parts;
    if (best > 0) cand[best - 1] = pair_at(best - 1);
    if (best + 1 < parts) cand[best] = pair_at(best);
  }
  for (std::size_t k = 0; k < parts; ++k) emit(start[k], start[k + 1], id[k]);
}

template <class Ranker, class Emit>
void bpe_merge_heap(std::string_view piece, std::size_t parts, Ranker& rank_of, bpe_workspace& w, Emit& emit) {
  const auto n = std::uint32_t(parts);
  constexpr std::uint32_t end = ~std::uint32_t(0);
  auto& start = w.start;
  auto& id = w.id;
  auto& next = w.next;
  auto& prev = w.prev;
  auto& version = w.version;
  next.resize(n);
  prev.resize(n);
  version.assign(n, 0);
  for (std::uint32_t k = 0; k < n; ++k) {
    next[k] = k + 1 < n ? k + 1 : end;
    prev[k] = k > 0 ? k - 1 : end;
  }
  const std::uint32_t size = start[n];
  auto& heap = w.heap;
  heap.clear();
  const auto later = std::greater<bpe_workspace::heap_entry>();
  auto push = [&](std::uint32_t left) {
    const std::uint32_t right = next[left];
    if (right == end) return;
    const std::uint32_t stop = next[right] == end ? size : start[next[right]];
    const bpe_candidate c = rank_of(bpe_pair{id[left], id[right], piece.substr(start[left], stop - start[left])});
    if (c.rank == bpe_candidate::no_merge) return;
    heap.push_back({c.rank, left, right, version[left], version[right], c.id});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (std::uint32_t k = 0; k + 1 < n; ++k) push(k);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const auto e = heap.back();
    heap.pop_back();
    // Stale: either part has changed since the entry was made, or they are no longer neighbours.
    if (version[e.left] != e.left_version || version[e.right] != e.right_version || next[e.left] != e.right) continue;
    id[e.left] = e.id;
    ++version[e.left];
    ++version[e.right];  // dead from now on
    next[e.left] = next[e.right];
    if (next[e.right] != end) prev[next[e.right]] = e.left;
    if (prev[e.left] != end) push(prev[e.left]);
    push(e.left);
  }
  for (std::uint32_t k = 0; k != end; k = next[k]) emit(start[k], next[k] == end ? size : start[next[k]], id[k]);
}

}  // namespace detail

/// Merges the initial parts the caller put in `w.start` / `w.id` (see bpe_workspace) and calls
/// `emit(begin, end, id)` for each final part, in order. `rank_of(bpe_pair)` returns the
/// bpe_candidate for two adjacent parts.
template <class Ranker, class Emit>
void bpe_merge_parts(std::string_view piece, std::size_t parts, Ranker&& rank_of, bpe_workspace& w, Emit&& emit,
                     std::size_t heap_threshold = bpe_heap_threshold) {
  if (parts == 0) return;
  if (parts > heap_threshold)
    detail::bpe_merge_heap(piece, parts, rank_of, w, emit);
  else
    detail::bpe_merge_scan(piece, parts, rank_of, w, emit);
}

/// Byte-level BPE: one initial part per byte, `byte_ids[b]` being the id of byte b. Appends the
/// ids of `piece` after merging to `out`.
template <class Ranker>
void bpe_merge(std::string_view piece, const token_id* byte_ids, Ranker&& rank_of, bpe_workspace& w,
               std::vector<token_id>& out, std::size_t heap_threshold = bpe_heap_threshold) {
  const std::size_t n = piece.size();
  w.start.resize(n + 1);
  w.id.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    w.start[k] = std::uint32_t(k);
    w.id[k] = byte_ids[static_cast<unsigned char>(piece[k])];
  }
  w.start[n] = std::uint32_t(n);
  bpe_merge_parts(piece, n, rank_of, w, [&out](std::uint32_t, std::uint32_t, token_id id) { out.push_back(id); },
                  heap_threshold);
}

}  // namespace lmkit::text
