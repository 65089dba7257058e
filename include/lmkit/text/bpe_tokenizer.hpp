// Byte-level BPE, as GPT-2, tiktoken and Hugging Face byte-level tokenizers define it: split the
// text with a pre-tokenising pattern, then merge the bytes of each piece into tokens.
//
// Two merge rules exist in the wild, and both are here:
// - token rank (tiktoken): a pair may merge when the bytes it covers are a token; the token with
//   the lowest id (rank) merges first, and a piece that is a token as a whole is that token.
// - merge list (GPT-2's vocab.bpe, tokenizer.json's "merges"): only listed pairs merge, in list order.
// For GPT-2's files both give the same ids (tiktoken's gpt2 is built that way); a tokenizer.json
// may have tokens that no merge produces, so the rule follows the file.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/text/bpe_merge.hpp"
#include "lmkit/text/piece_cache.hpp"
#include "lmkit/text/pretokenizer.hpp"
#include "lmkit/text/special_token.hpp"
#include "lmkit/text/token_bytes_table.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

/// Which special tokens `encode` turns into their ids. A special token's text that is not allowed
/// makes `encode` throw, as tiktoken's `encode` does by default; `encode_ordinary` treats all
/// such text as ordinary text.
class allowed_special {
 public:
  static allowed_special none() { return allowed_special(false, {}); }
  static allowed_special all() { return allowed_special(true, {}); }
  static allowed_special only(std::vector<std::string> texts) { return allowed_special(false, std::move(texts)); }
  bool allows(std::string_view text) const {
    return all_ || std::find(listed_.begin(), listed_.end(), text) != listed_.end();
  }

 private:
  allowed_special(bool all, std::vector<std::string> listed) : all_(all), listed_(std::move(listed)) {}
  bool all_;
  std::vector<std::string> listed_;
};

class bpe_tokenizer {
 public:
  /// tiktoken's rule: `ranks` maps every token's bytes to its rank, which is its id.
  bpe_tokenizer(token_bytes_table ranks, split_pattern pattern, std::vector<special_token> specials = {})
      : vocab_(std::move(ranks)), pattern_(pattern), specials_(std::move(specials)) {
    finish_construction();
  }

  /// The merge-list rule: `merges[k]` = (left, right) ids merging with rank k into the token whose
  /// bytes are the two joined. `whole_piece_first`: a piece that is a token is that token without
  /// merging (Hugging Face's `ignore_merges`, as Llama 3's tokenizer.json sets it).
  bpe_tokenizer(token_bytes_table vocab, std::span<const std::pair<token_id, token_id>> merges, split_pattern pattern,
                std::vector<special_token> specials = {}, bool whole_piece_first = false)
      : vocab_(std::move(vocab)),
        pattern_(pattern),
        specials_(std::move(specials)),
        use_merge_list_(true),
        whole_piece_first_(whole_piece_first) {
    merge_list_.reserve(merges.size() * 2);
    for (std::size_t k = 0; k < merges.size(); ++k) {
      const auto [left, right] = merges[k];
      require<format_error>(vocab_.contains(left) && vocab_.contains(right), "merge ", k, " names a token id (",
                            left, " or ", right, ") that is not in the vocabulary");
      std::string joined(vocab_.bytes(left));
      joined += vocab_.bytes(right);
      const token_id merged = vocab_.find(joined);
      require<format_error>(merged != token_bytes_table::none, "merge ", k, " makes a token that is not in the vocabulary");
      // The first listing of a pair wins, as in Hugging Face tokenizers.
      merge_list_.try_emplace(pair_key(left, right), bpe_candidate{std::uint32_t(k), merged});
    }
    finish_construction();
  }

  split_pattern pattern() const { return pattern_; }
  /// One past the largest id, special tokens included: the size a model's embedding needs.
  std::size_t vocab_size() const { return vocab_size_; }
  const std::vector<special_token>& special_tokens() const { return specials_; }
  /// The id of the special token spelled `text`, if there is one.
  std::optional<token_id> special_id(std::string_view text) const {
    for (const auto& s : specials_)
      if (s.text == text) return s.id;
    return std::nullopt;
  }

  /// Ids of `text`, with any special token's text encoded as ordinary text.
  std::vector<token_id> encode_ordinary(std::string_view text) const {
    require_utf8(text, "text to encode");
    std::vector<token_id> out;
    out.reserve(text.size() / 3);
    scratch w(text.size());
    encode_span(text, w, out);
    return out;
  }

  /// Ids of `text` where the allowed special tokens become their ids; a special token's text
  /// that is not allowed is an argument_error naming it and its byte offset.
  std::vector<token_id> encode(std::string_view text, const allowed_special& allowed = allowed_special::none()) const {
    require_utf8(text, "text to encode");
    std::vector<token_id> out;
    out.reserve(text.size() / 3);
    scratch w(text.size());
    special_token_finder finder(specials_, text);
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto found = finder.next(pos);
      if (found.token == nullptr) break;
      require<argument_error>(allowed.allows(found.token->text), "text to encode contains the special token ",
                              found.token->text, " at byte ", found.at,
                              ", which is not allowed (allow it, or use encode_ordinary)");
      const auto [before, after] = special_token_span(text, pos, found.at, *found.token);
      encode_span(text.substr(pos, before - pos), w, out);
      out.push_back(found.token->id);
      pos = after;
    }
    encode_span(text.substr(pos), w, out);
    return out;
  }

  /// `encode_ordinary` of each text, the texts shared among the pool's threads.
  std::vector<std::vector<token_id>> encode_batch(std::span<const std::string_view> texts,
                                                  const thread_pool& pool = serial_pool()) const {
    for (std::size_t k = 0; k < texts.size(); ++k) {
      const utf8_check check = check_utf8(texts[k]);
      require<format_error>(bool(check), "text ", k, " of the batch: invalid UTF-8 at byte ", check.offset, ": ",
                            check.reason);
    }
    std::vector<std::vector<token_id>> out(texts.size());
    // Chunks of ~64 KiB of text: enough work per task, and balanced for lines of any length.
    std::vector<std::size_t> chunk_end;
    std::size_t bytes = 0;
    for (std::size_t k = 0; k < texts.size(); ++k) {
      bytes += texts[k].size();
      if (bytes >= (std::size_t(64) << 10) || k + 1 == texts.size()) {
        chunk_end.push_back(k + 1);
        bytes = 0;
      }
    }
    pool.for_each_index(chunk_end.size(), [&](std::size_t c) {
      scratch w(std::size_t(64) << 10);
      for (std::size_t k = c == 0 ? 0 : chunk_end[c - 1]; k < chunk_end[c]; ++k) {
        out[k].reserve(texts[k].size() / 3);
        encode_span(texts[k], w, out[k]);
      }
    });
    return out;
  }

  /// The bytes that `ids` stand for (not always valid UTF-8: a token may end inside a character).
  std::string decode(std::span<const token_id> ids) const {
    std::string out;
    for (const token_id id : ids) out += token_bytes(id);
    return out;
  }
  /// The text `ids` stand for, with ill-formed UTF-8 replaced by U+FFFD.
  std::string decode_text(std::span<const token_id> ids) const { return replace_invalid_utf8(decode(ids)); }

  /// The bytes of one token; an id outside the vocabulary is an argument_error.
  std::string_view token_bytes(token_id id) const {
    if (vocab_.contains(id)) return vocab_.bytes(id);
    for (const auto& s : specials_)
      if (s.id == id) return s.text;
    throw argument_error(lmkit::detail::concat("token id ", id, " is not in the vocabulary (size ", vocab_size_, ")"));
  }

  const token_bytes_table& vocabulary() const { return vocab_; }
  bool uses_merge_list() const { return use_merge_list_; }

 private:
  static std::uint64_t pair_key(token_id a, token_id b) { return std::uint64_t(a) << 32 | b; }

  void finish_construction() {
    for (int b = 0; b < 256; ++b) {
      const char c = char(b);
      byte_ids_[b] = vocab_.find(std::string_view(&c, 1));
      require<format_error>(byte_ids_[b] != token_bytes_table::none, "byte-level BPE vocabulary has no token for byte ",
                            b, ": every byte needs one");
    }
    vocab_size_ = vocab_.id_bound();
    for (const auto& s : specials_) {
      require<format_error>(!s.text.empty(), "special token ", s.id, " has no text");
      // Matched in valid text, a special token must be valid UTF-8 itself, or a match could split a character.
      require_utf8(s.text, lmkit::detail::concat("special token ", s.id));
      require<format_error>(!vocab_.contains(s.id), "special token ", s.text, " has id ", s.id,
                            ", which an ordinary token already has");
      vocab_size_ = std::max(vocab_size_, std::size_t(s.id) + 1);
    }
  }

  /// Remembers what pairs of tokens merge into: the vocabulary's table is megabytes (a cache
  /// miss per look-up), while the pairs a text keeps asking about are few. Direct-mapped, sized
  /// by the text (up to 16384 entries, 256 KiB) and made on first use.
  class pair_memo {
   public:
    explicit pair_memo(std::size_t text_bytes) : text_bytes_(text_bytes) {}
    template <class Compute>
    token_id find_or(std::uint64_t key, Compute&& compute) {
      if (entries_.empty()) {
        const std::size_t want = std::clamp<std::size_t>(text_bytes_ / 16, 256, 16384);
        std::size_t size = 256;
        while (size < want) size *= 2;
        entries_.resize(size);
        shift_ = 64 - std::countr_zero(size);
      }
      entry& e = entries_[(key * 0x9E3779B97F4A7C15ull) >> shift_];
      if (e.key != key) e = {key, compute()};
      return e.merged;
    }

   private:
    struct entry {
      std::uint64_t key = ~std::uint64_t(0);  // no pair has this key: ids are below 2^32 - 1
      token_id merged = 0;
    };
    std::size_t text_bytes_;
    std::vector<entry> entries_;
    int shift_ = 0;
  };

  /// tiktoken's rule: a pair merges into the token its bytes spell, ranked by that token's id.
  struct token_rank {
    const token_bytes_table& vocab;
    pair_memo& memo;
    bpe_candidate operator()(const bpe_pair& p) const {
      const token_id merged = memo.find_or(pair_key(p.left, p.right), [&] { return vocab.find(p.bytes); });
      return merged == token_bytes_table::none ? bpe_candidate{} : bpe_candidate{merged, merged};
    }
  };

  /// What one encode call reuses from piece to piece.
  struct scratch {
    explicit scratch(std::size_t text_bytes) : cache(text_bytes), pairs(text_bytes) {}
    bpe_workspace merge;
    piece_cache cache;
    pair_memo pairs;
  };

  void encode_span(std::string_view text, scratch& w, std::vector<token_id>& out) const {
    for_each_piece(pattern_, text, [&](std::string_view piece) { encode_piece(piece, w, out); });
  }

  void encode_piece(std::string_view piece, scratch& w, std::vector<token_id>& out) const {
    // tiktoken: a piece that is a token is that token, whatever merging would make of it.
    if (whole_piece_first_) {
      if (const token_id whole = vocab_.find(piece); whole != token_bytes_table::none) {
        out.push_back(whole);
        return;
      }
    }
    const std::uint64_t hash = detail::hash_bytes(piece, detail::load_head(piece.data(), piece.size()));
    if (const auto cached = w.cache.find(piece, hash); !cached.empty()) {
      out.insert(out.end(), cached.begin(), cached.end());
      return;
    }
    const std::size_t first = out.size();
    if (use_merge_list_) {
      bpe_merge(piece, byte_ids_, [this](const bpe_pair& p) {
        const auto it = merge_list_.find(pair_key(p.left, p.right));
        return it == merge_list_.end() ? bpe_candidate{} : it->second;
      }, w.merge, out);
    } else {
      bpe_merge(piece, byte_ids_, token_rank{vocab_, w.pairs}, w.merge, out);
    }
    w.cache.store(piece, hash, std::span<const token_id>(out).subspan(first));
  }

  token_bytes_table vocab_;
  split_pattern pattern_;
  std::vector<special_token> specials_;
  bool use_merge_list_ = false;
  bool whole_piece_first_ = true;
  std::unordered_map<std::uint64_t, bpe_candidate> merge_list_;
  token_id byte_ids_[256]{};
  std::size_t vocab_size_ = 0;
};

}  // namespace lmkit::text
