// SentencePiece-style BPE, as Llama-family models use it: spaces become "▁" (U+2581), a "▁" is put
// before the text (or after it, in a model that treats whitespace as a suffix), the text's
// user-defined pieces are taken whole and its other characters merged pairwise, highest-scoring
// piece first (the leftmost among equal scores), and a character no piece covers becomes its UTF-8
// bytes as <0xNN> pieces (byte fallback) or <unk>. This is SentencePiece's BPE encoder
// (bpe_model.cc), which llama.cpp and Hugging Face's Llama tokenizers reproduce.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/text/bpe_merge.hpp"
#include "lmkit/text/special_token.hpp"
#include "lmkit/text/token_bytes_table.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

/// A piece's role, with SentencePiece's numbering.
enum class piece_type : std::uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct sentencepiece_piece {
  std::string text;  // "▁" for spaces, as in .model files
  float score = 0;
  piece_type type = piece_type::normal;
};

struct sentencepiece_options {
  bool add_dummy_prefix = true;           // a "▁" before the text
  bool whitespace_as_suffix = false;      // ... after it instead (the trainer's treat_whitespace_as_suffix)
  bool no_prefix_before_space = false;    // ... unless the text starts with a space or "▁" (Hugging Face's Metaspace)
  bool split_at_every_space = false;      // words end before every "▁", merged apart (Metaspace with split)
  bool prefix_first_segment_only = false; // with added tokens: only the text at the start gets the prefix
  bool remove_extra_whitespaces = false;  // strip the ends and collapse runs of spaces first
  bool escape_whitespaces = true;         // spaces become "▁"
  bool byte_fallback = true;              // unknown characters as <0xNN> pieces, else <unk>
  std::optional<token_id> unk_id = {}, bos_id = {}, eos_id = {};
  /// A tokenizer.json's added tokens or a GGUF's user-defined and control tokens: their text stands
  /// for their id, the text around them encoded apart (a .model has none). Those whose piece is
  /// user-defined are always found first, the others on request (match_added_tokens).
  std::vector<special_token> added_tokens = {};
};

/// Options for encoding one text.
struct sentencepiece_encode_options {
  bool add_bos = false;
  bool add_eos = false;
  /// Every added token's text becomes its id (as Hugging Face's encode and llama.cpp's
  /// parse_special do); else only the user-defined ones', and the others' is text.
  bool match_added_tokens = false;
};

class sentencepiece_tokenizer {
 public:
  static constexpr std::string_view space_symbol = "\xE2\x96\x81";  // U+2581

  sentencepiece_tokenizer(std::vector<sentencepiece_piece> pieces, sentencepiece_options options)
      : pieces_(std::move(pieces)), options_(options) {
    require<format_error>(!pieces_.empty(), "SentencePiece model has no pieces");
    require<format_error>(pieces_.size() < token_bytes_table::none, "SentencePiece model has too many pieces");
    std::fill(std::begin(byte_ids_), std::end(byte_ids_), token_bytes_table::none);
    // Merge priority: a higher score merges first, so rank = position in descending score order.
    std::vector<token_id> order;
    for (token_id id = 0; id < pieces_.size(); ++id) {
      const auto& p = pieces_[id];
      require<format_error>(!p.text.empty(), "SentencePiece piece ", id, " is empty");
      require_utf8(p.text, lmkit::detail::concat("SentencePiece piece ", id));
      // Scores order the merges; a NaN would break the sort's ordering (and a damaged file has one).
      require<format_error>(!std::isnan(p.score), "SentencePiece piece ", id, " has score NaN");
      if (p.type == piece_type::normal || p.type == piece_type::user_defined || p.type == piece_type::unused) {
        if (mergeable_.find(p.text) == token_bytes_table::none) mergeable_.add(p.text, id);  // first one wins
        if (p.type == piece_type::user_defined && user_defined_.find(p.text) == token_bytes_table::none) {
          user_defined_.add(p.text, id);
          user_defined_first_bytes_[static_cast<unsigned char>(p.text[0])] = true;
          if (std::ranges::find(user_defined_sizes_, p.text.size()) == user_defined_sizes_.end())
            user_defined_sizes_.push_back(p.text.size());
        }
        // A "▁" after another character of a piece: words cannot be merged separately.
        for (std::size_t at = p.text.find(space_symbol, 1); at != std::string::npos; at = p.text.find(space_symbol, at + 1))
          if (at < space_symbol.size() || p.text.compare(at - 3, 3, space_symbol) != 0) words_merge_separately_ = false;
        order.push_back(id);
      } else if (p.type == piece_type::byte) {
        const int b = parse_byte_piece(p.text);
        require<format_error>(b >= 0, "SentencePiece byte piece ", id, " is '", p.text, "', not <0xNN>");
        byte_ids_[b] = id;
      } else if (p.type == piece_type::unknown && !options_.unk_id) {
        options_.unk_id = id;
      }
    }
    std::ranges::sort(user_defined_sizes_, std::greater<>{});  // the longest match wins
    std::stable_sort(order.begin(), order.end(), [&](token_id a, token_id b) { return pieces_[a].score > pieces_[b].score; });
    rank_.assign(pieces_.size(), bpe_candidate::no_merge);
    for (std::size_t r = 0; r < order.size(); ++r) rank_[order[r]] = std::uint32_t(r);
    for (const auto id : {options_.unk_id, options_.bos_id, options_.eos_id})
      require<format_error>(!id || *id < pieces_.size(), "special token id ", id.value_or(0), " is outside the ",
                            pieces_.size(), " pieces");
    if (options_.byte_fallback)
      for (int b = 0; b < 256; ++b)
        require<format_error>(byte_ids_[b] != token_bytes_table::none, "byte fallback needs piece <0x", hex_byte(b), ">");
    require<format_error>(options_.byte_fallback || options_.unk_id, "SentencePiece model has neither byte fallback nor <unk>");
    for (const special_token& t : options_.added_tokens) {
      require<format_error>(!t.text.empty(), "added token ", t.id, " has no text");  // it would match everywhere
      require_utf8(t.text, lmkit::detail::concat("added token ", t.id));  // a match must not split a character
      require<format_error>(t.id < pieces_.size(), "added token ", t.text, " has id ", t.id, ", past the ", pieces_.size(),
                            " pieces");
      if (pieces_[t.id].type == piece_type::user_defined) always_found_.push_back(t);
    }
  }

  std::vector<token_id> encode(std::string_view text, sentencepiece_encode_options how = {}) const {
    require_utf8(text, "text to encode");
    std::vector<token_id> out;
    if (how.add_bos) out.push_back(require_special(options_.bos_id, "BOS"));
    const std::vector<special_token>& found_first = how.match_added_tokens ? options_.added_tokens : always_found_;
    if (!found_first.empty())
      encode_around_added_tokens(text, found_first, out);
    else
      encode_normalized(normalize(text, true), out);
    if (how.add_eos) out.push_back(require_special(options_.eos_id, "EOS"));
    return out;
  }

  /// The text of `ids`: "▁" back to spaces, byte pieces to their bytes (ill-formed UTF-8 that they
  /// leave becomes U+FFFD), control pieces (BOS, EOS) to nothing, <unk> to " ⁇ ", and the space of
  /// the dummy prefix dropped as SentencePiece (0.2) drops it: while nothing has been written, a
  /// piece's leading "▁" goes, once when the model adds a dummy prefix, from every such piece when
  /// it removes extra whitespace (encoding leaves no space at the start then).
  std::string decode(std::span<const token_id> ids) const {
    const bool drop_leading = options_.add_dummy_prefix || options_.remove_extra_whitespaces;
    std::string bytes;
    bool at_start = true, dropped_one = false;
    for (const token_id id : ids) {
      require<argument_error>(id < pieces_.size(), "token id ", id, " is not in the vocabulary (size ", pieces_.size(), ")");
      const auto& p = pieces_[id];
      if (p.type == piece_type::byte) {
        bytes.push_back(char(parse_byte_piece(p.text)));
        continue;
      }
      if (dropped_one || !bytes.empty()) at_start = false;
      std::string_view text = p.text;
      dropped_one = false;
      switch (p.type) {
        case piece_type::control: break;
        case piece_type::unknown: bytes += " \xE2\x81\x87 "; break;  // SentencePiece's unk surface, " ⁇ "
        default:
          if (at_start && drop_leading && text.starts_with(space_symbol)) {
            text.remove_prefix(space_symbol.size());
            dropped_one = !options_.remove_extra_whitespaces;
          }
          bytes += text;
      }
    }
    std::string text;
    text.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
      if (options_.escape_whitespaces && std::string_view(bytes).substr(i, 3) == space_symbol) {
        text.push_back(' ');
        i += 3;
      } else {
        text.push_back(bytes[i++]);
      }
    }
    return replace_invalid_utf8(text);
  }

  std::size_t vocab_size() const { return pieces_.size(); }
  /// The control pieces (BOS, EOS...) and <unk>, with their text.
  std::vector<special_token> special_tokens() const {
    std::vector<special_token> out;
    for (token_id id = 0; id < pieces_.size(); ++id)
      if (pieces_[id].type == piece_type::control || pieces_[id].type == piece_type::unknown)
        out.push_back({pieces_[id].text, id});
    return out;
  }
  const std::vector<sentencepiece_piece>& pieces() const { return pieces_; }
  const sentencepiece_options& options() const { return options_; }
  std::optional<token_id> bos_id() const { return options_.bos_id; }
  std::optional<token_id> eos_id() const { return options_.eos_id; }
  std::optional<token_id> unk_id() const { return options_.unk_id; }

 private:
  static int parse_byte_piece(std::string_view t) {
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    if (t.size() != 6 || !t.starts_with("<0x") || t[5] != '>' || hex(t[3]) < 0 || hex(t[4]) < 0) return -1;
    return hex(t[3]) * 16 + hex(t[4]);
  }
  static std::string hex_byte(int b) {
    const char* digits = "0123456789ABCDEF";
    return {digits[b >> 4], digits[b & 15]};
  }
  static token_id require_special(const std::optional<token_id>& id, const char* name) {
    require<argument_error>(id.has_value(), "this SentencePiece model has no ", name, " token");
    return *id;
  }

  /// Hugging Face's order: the added tokens are found first (the earliest, the longest of those
  /// starting at one byte), then each stretch of text between them is normalised and merged on
  /// its own, the dummy prefix put before each (or, with prefix_first_segment_only, before the
  /// one at the start of the text).
  void encode_around_added_tokens(std::string_view text, std::span<const special_token> added,
                                  std::vector<token_id>& out) const {
    special_token_finder finder(added, text);
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto found = finder.next(pos);
      if (found.token == nullptr) break;
      const auto [before_end, after] = special_token_span(text, pos, found.at, *found.token);
      encode_normalized(normalize(text.substr(pos, before_end - pos), pos == 0), out);
      out.push_back(found.token->id);
      pos = after;
    }
    encode_normalized(normalize(text.substr(pos), pos == 0), out);
  }

  std::string normalize(std::string_view text, bool at_start) const {
    std::string t(text);
    if (options_.remove_extra_whitespaces) {
      std::string collapsed;
      for (const char c : t) {
        if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) continue;
        collapsed.push_back(c);
      }
      while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
      t = std::move(collapsed);
    }
    if (t.empty()) return t;
    if (options_.add_dummy_prefix && !options_.whitespace_as_suffix && (at_start || !options_.prefix_first_segment_only) &&
        !(options_.no_prefix_before_space && (t.starts_with(' ') || t.starts_with(space_symbol))))
      t.insert(t.begin(), ' ');
    std::string escaped;
    if (options_.escape_whitespaces) {
      escaped.reserve(t.size() + t.size() / 4);
      for (const char c : t) {
        if (c == ' ')
          escaped += space_symbol;
        else
          escaped.push_back(c);
      }
      // SentencePiece strips the end once escaped: a "▁" that the text itself ends with goes too.
      if (options_.remove_extra_whitespaces)
        while (escaped.ends_with(space_symbol)) escaped.resize(escaped.size() - space_symbol.size());
    } else {
      escaped = std::move(t);
    }
    if (options_.add_dummy_prefix && options_.whitespace_as_suffix)
      escaped += options_.escape_whitespaces ? space_symbol : std::string_view(" ");
    return escaped;
  }

  /// The user-defined piece that `s` starts with, the longest if several, as SentencePiece's
  /// prefix matcher finds it; `none` if there is none.
  token_id user_defined_prefix(std::string_view s, std::uint32_t& size) const {
    if (user_defined_sizes_.empty() || !user_defined_first_bytes_[static_cast<unsigned char>(s[0])])
      return token_bytes_table::none;
    for (const std::size_t n : user_defined_sizes_)
      if (n <= s.size())
        if (const token_id id = user_defined_.find(s.substr(0, n)); id != token_bytes_table::none) {
          size = std::uint32_t(n);
          return id;
        }
    return token_bytes_table::none;
  }
  bool is_user_defined(token_id id) const {
    return id != token_bytes_table::none && pieces_[id].type == piece_type::user_defined;
  }

  void encode_normalized(std::string_view s, std::vector<token_id>& out) const {
    // SentencePiece merges over the whole text. When no piece has a "▁" after another character,
    // no merge can cross the start of a word ("▁" after a character other than "▁"), so each word
    // is merged on its own: the same result, in linear time for long texts.
    bpe_workspace w;
    if (!words_merge_separately_ && !options_.split_at_every_space) return encode_word(s, w, out);
    std::size_t begin = 0;
    for (std::size_t at = s.find(space_symbol, 1); at != std::string_view::npos; at = s.find(space_symbol, at + 3)) {
      if (!options_.split_at_every_space && at >= 3 && s.compare(at - 3, 3, space_symbol) == 0) continue;  // a run
      encode_word(s.substr(begin, at - begin), w, out);
      begin = at;
    }
    encode_word(s.substr(begin), w, out);
  }

  void encode_word(std::string_view s, bpe_workspace& w, std::vector<token_id>& out) const {
    if (s.empty()) return;
    // Initial parts: user-defined pieces where the text has them (whole, and never merged with a
    // neighbour), else characters.
    w.start.clear();
    w.id.clear();
    for (std::size_t i = 0; i < s.size();) {
      std::uint32_t size = 0;
      token_id id = user_defined_prefix(s.substr(i), size);
      if (id == token_bytes_table::none) {
        size = decode_utf8(s.data() + i).size;
        id = mergeable_.find(s.substr(i, size));
      }
      w.start.push_back(std::uint32_t(i));
      w.id.push_back(id);
      i += size;
    }
    const std::size_t parts = w.start.size();
    w.start.push_back(std::uint32_t(s.size()));
    bool previous_unknown = !out.empty() && options_.unk_id && out.back() == *options_.unk_id;
    bpe_merge_parts(
        s, parts,
        [this](const bpe_pair& p) {
          if (is_user_defined(p.left) || is_user_defined(p.right)) return bpe_candidate{};
          const token_id id = mergeable_.find(p.bytes);
          return id == token_bytes_table::none ? bpe_candidate{} : bpe_candidate{rank_[id], id};
        },
        w,
        [&](std::uint32_t begin, std::uint32_t end, token_id id) {
          if (id != token_bytes_table::none) {
            out.push_back(id);
            previous_unknown = false;
          } else if (options_.byte_fallback) {
            for (std::uint32_t b = begin; b < end; ++b) out.push_back(byte_ids_[static_cast<unsigned char>(s[b])]);
          } else if (!previous_unknown) {  // a run of unknown characters is one <unk>, as in SentencePiece
            out.push_back(*options_.unk_id);
            previous_unknown = true;
          }
        });
  }

  std::vector<sentencepiece_piece> pieces_;
  sentencepiece_options options_;
  token_bytes_table mergeable_;  // normal, user-defined and unused pieces: text -> id
  token_bytes_table user_defined_;
  std::vector<std::size_t> user_defined_sizes_;  // their lengths in bytes, longest first
  std::array<bool, 256> user_defined_first_bytes_{};
  std::vector<std::uint32_t> rank_;
  token_id byte_ids_[256];
  bool words_merge_separately_ = true;
  std::vector<special_token> always_found_;  // the user-defined added tokens
};

}  // namespace lmkit::text
