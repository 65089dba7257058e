// Byte-level BPE training: pre-tokenise a corpus with one of the patterns, count its distinct
// pieces, then repeatedly merge the most frequent adjacent pair of tokens (ties: the pair of
// smallest ids) until the vocabulary has the requested size. Tokens 0-255 are the bytes in byte
// order; merge k makes token 256 + k. Deterministic: the same corpus and options give the same
// vocabulary on any machine and thread count.
//
// Pair counts are kept up to date incrementally: a merge only revisits the distinct pieces that
// contain its pair, and a heap with lazy re-validation finds the next best pair.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/string_map.hpp"
#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/pretokenizer.hpp"
#include "lmkit/text/token_bytes_table.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

struct bpe_training_options {
  std::size_t vocab_size = 8000;  // bytes + merges (special tokens come on top)
  split_pattern pattern = split_pattern::gpt2;
  std::uint64_t min_pair_count = 2;  // stop early when no pair is this frequent
  /// Called now and then with (merges done, merges wanted), e.g. to print progress.
  std::function<void(std::size_t, std::size_t)> progress = {};
};

struct bpe_training_result {
  std::vector<std::pair<token_id, token_id>> merges;  // merge k makes token 256 + k
  std::vector<std::string> token_bytes;                // by id: the 256 bytes, then the merged tokens
  std::uint64_t corpus_bytes = 0;
  std::uint64_t corpus_tokens = 0;  // tokens of the corpus after all merges
  std::size_t distinct_pieces = 0;

  /// The result as a byte-level BPE tokenizer with tiktoken's rule (rank = id).
  bpe_tokenizer tokenizer(split_pattern pattern, std::vector<special_token> specials = {}) const {
    token_bytes_table ranks;
    for (token_id id = 0; id < token_bytes.size(); ++id) ranks.add(token_bytes[id], id);
    return bpe_tokenizer(std::move(ranks), pattern, std::move(specials));
  }
};

class bpe_trainer {
 public:
  explicit bpe_trainer(split_pattern pattern = split_pattern::gpt2) : pattern_(pattern) {}

  /// Adds text to the corpus (any number of calls; texts are pre-tokenised separately).
  void add_text(std::string_view text) {
    require_utf8(text, "training text");
    corpus_bytes_ += text.size();
    for_each_piece(pattern_, text, [&](std::string_view piece) {
      if (const auto it = piece_counts_.find(piece); it != piece_counts_.end())
        ++it->second;  // most pieces have been seen before: no string made
      else
        piece_counts_.emplace(piece, 1);
    });
  }

  bpe_training_result train(const bpe_training_options& options) const {
    require<argument_error>(options.vocab_size >= 256, "BPE vocabulary size must be at least 256 (the bytes), got ",
                            options.vocab_size);
    require<argument_error>(options.min_pair_count >= 1, "min_pair_count must be at least 1");
    bpe_training_result result;
    result.corpus_bytes = corpus_bytes_;
    result.distinct_pieces = piece_counts_.size();
    for (int b = 0; b < 256; ++b) result.token_bytes.emplace_back(1, char(b));

    // Distinct pieces in byte order, so that nothing depends on hash-map iteration order.
    std::vector<std::pair<std::string_view, std::uint64_t>> sorted(piece_counts_.begin(), piece_counts_.end());
    std::sort(sorted.begin(), sorted.end());
    std::vector<word> words;
    words.reserve(sorted.size());
    for (const auto& [piece, count] : sorted) {
      word w{{}, count};
      for (const char c : piece) w.symbols.push_back(static_cast<unsigned char>(c));
      words.push_back(std::move(w));
    }

    std::unordered_map<std::uint64_t, std::uint64_t> pair_count;
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> pair_words;
    for (std::uint32_t i = 0; i < words.size(); ++i) {
      const auto& s = words[i].symbols;
      for (std::size_t k = 0; k + 1 < s.size(); ++k) {
        const std::uint64_t key = pair_key(s[k], s[k + 1]);
        pair_count[key] += words[i].count;
        auto& list = pair_words[key];
        if (list.empty() || list.back() != i) list.push_back(i);
      }
    }
    // Max-heap on (count, then the smaller pair first).
    using entry = std::pair<std::uint64_t, std::uint64_t>;  // (count, pair key)
    auto lower = [](const entry& a, const entry& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; };
    std::priority_queue<entry, std::vector<entry>, decltype(lower)> heap(lower);
    for (const auto& [key, count] : pair_count) heap.push({count, key});

    const std::size_t wanted = options.vocab_size - 256;
    std::vector<std::uint32_t> touched;
    while (result.merges.size() < wanted && !heap.empty()) {
      const auto [count, key] = heap.top();
      heap.pop();
      const auto it = pair_count.find(key);
      const std::uint64_t current = it == pair_count.end() ? 0 : it->second;
      if (current != count) {  // stale: the count has changed since this entry was pushed
        if (current > 0) heap.push({current, key});
        continue;
      }
      if (count < options.min_pair_count) break;
      const auto left = token_id(key >> 32), right = token_id(key & 0xFFFFFFFFu);
      const auto merged = token_id(result.token_bytes.size());
      result.merges.emplace_back(left, right);
      result.token_bytes.push_back(result.token_bytes[left] + result.token_bytes[right]);

      // Re-count the pieces that contain the pair: remove their old pairs, merge, add the new.
      touched = std::move(pair_words[key]);
      pair_words.erase(key);
      std::vector<std::uint64_t> increased;
      for (const std::uint32_t i : touched) {
        word& w = words[i];
        auto& s = w.symbols;
        bool has_pair = false;
        for (std::size_t k = 0; k + 1 < s.size() && !has_pair; ++k) has_pair = s[k] == left && s[k + 1] == right;
        if (!has_pair) continue;  // listed before an earlier merge changed it
        for (std::size_t k = 0; k + 1 < s.size(); ++k) {
          const std::uint64_t old_key = pair_key(s[k], s[k + 1]);
          if ((pair_count[old_key] -= w.count) == 0) pair_count.erase(old_key);
        }
        std::size_t out = 0;
        for (std::size_t k = 0; k < s.size(); ++k) {
          if (k + 1 < s.size() && s[k] == left && s[k + 1] == right) {
            s[out++] = merged;
            ++k;
          } else {
            s[out++] = s[k];
          }
        }
        s.resize(out);
        for (std::size_t k = 0; k + 1 < s.size(); ++k) {
          const std::uint64_t new_key = pair_key(s[k], s[k + 1]);
          pair_count[new_key] += w.count;
          auto& list = pair_words[new_key];
          if (list.empty() || list.back() != i) list.push_back(i);
          if (s[k] == merged || s[k + 1] == merged) increased.push_back(new_key);
        }
      }
      // Pairs that involve the new token got counts no heap entry knows of yet.
      std::sort(increased.begin(), increased.end());
      increased.erase(std::unique(increased.begin(), increased.end()), increased.end());
      for (const std::uint64_t k : increased)
        if (const auto c = pair_count.find(k); c != pair_count.end()) heap.push({c->second, k});
      if (options.progress && (result.merges.size() % 256 == 0 || result.merges.size() == wanted))
        options.progress(result.merges.size(), wanted);
    }
    for (const auto& w : words) result.corpus_tokens += w.count * w.symbols.size();
    return result;
  }

 private:
  struct word {
    std::vector<token_id> symbols;
    std::uint64_t count;
  };
  static std::uint64_t pair_key(token_id a, token_id b) { return std::uint64_t(a) << 32 | b; }

  split_pattern pattern_;
  string_map<std::uint64_t> piece_counts_;
  std::uint64_t corpus_bytes_ = 0;
};

}  // namespace lmkit::text
