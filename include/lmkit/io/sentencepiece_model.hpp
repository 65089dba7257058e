// SentencePiece's .model files: a protocol-buffer ModelProto. Only the fields the BPE encoder
// needs are read (pieces, the trainer's model type, byte fallback and special ids, the normaliser's
// whitespace options); the rest are skipped by their wire type.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/text/sentencepiece_tokenizer.hpp"

namespace lmkit::io {

namespace detail {

/// A reader of protocol-buffer wire format over one message's bytes.
class protobuf_reader {
 public:
  protobuf_reader(std::string_view bytes, std::string_view where) : bytes_(bytes), where_(where) {}
  bool done() const { return pos_ >= bytes_.size(); }

  struct field {
    std::uint32_t number;
    std::uint32_t wire_type;  // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    std::uint64_t value = 0;  // varint and fixed values
    std::string_view bytes;   // length-delimited values
  };

  field next() {
    const std::uint64_t key = varint();
    field f{std::uint32_t(key >> 3), std::uint32_t(key & 7), 0, {}};
    require<format_error>(f.number != 0, where_, ": field number 0 at byte ", pos_);
    switch (f.wire_type) {
      case 0: f.value = varint(); break;
      case 1: f.value = fixed(8); break;
      case 5: f.value = fixed(4); break;
      case 2: {
        const std::uint64_t length = varint();
        require<format_error>(length <= bytes_.size() - pos_, where_, ": field ", f.number, " runs past the end (",
                              length, " bytes at byte ", pos_, " of ", bytes_.size(), ")");
        f.bytes = bytes_.substr(pos_, std::size_t(length));
        pos_ += std::size_t(length);
        break;
      }
      default:
        throw format_error(lmkit::detail::concat(where_, ": field ", f.number, " has wire type ", f.wire_type,
                                                 ", which .model files do not use"));
    }
    return f;
  }

 private:
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      require<format_error>(pos_ < bytes_.size(), where_, ": truncated (a number runs past the end)");
      const auto b = static_cast<unsigned char>(bytes_[pos_++]);
      v |= std::uint64_t(b & 0x7F) << shift;
      if (b < 0x80) return v;
    }
    throw format_error(lmkit::detail::concat(where_, ": a number longer than 10 bytes at byte ", pos_));
  }
  std::uint64_t fixed(std::size_t n) {
    require<format_error>(n <= bytes_.size() - pos_, where_, ": truncated (a fixed-size value runs past the end)");
    std::uint64_t v = 0;
    std::memcpy(&v, bytes_.data() + pos_, n);  // little-endian on the machines lmkit supports
    pos_ += n;
    return v;
  }

  std::string_view bytes_;
  std::string_view where_;
  std::size_t pos_ = 0;
};

inline std::optional<text::token_id> special_id(std::uint64_t value) {
  const auto v = static_cast<std::int32_t>(static_cast<std::uint32_t>(value));  // int32 fields; -1 = none
  if (v < 0) return std::nullopt;
  return text::token_id(v);
}

}  // namespace detail

inline text::sentencepiece_tokenizer parse_sentencepiece_model(std::string_view bytes, std::string_view source) {
  std::vector<text::sentencepiece_piece> pieces;
  text::sentencepiece_options options;
  options.remove_extra_whitespaces = true;  // the proto's defaults
  options.byte_fallback = false;
  options.unk_id = 0;
  options.bos_id = 1;
  options.eos_id = 2;
  std::uint64_t model_type = 1;  // UNIGRAM unless said
  std::string normalizer = "identity";
  bool has_charsmap = false;
  detail::protobuf_reader model(bytes, source);
  while (!model.done()) {
    const auto f = model.next();
    if (f.number == 1 && f.wire_type == 2) {
      text::sentencepiece_piece piece;
      detail::protobuf_reader r(f.bytes, source);
      while (!r.done()) {
        const auto g = r.next();
        if (g.number == 1 && g.wire_type == 2) piece.text = std::string(g.bytes);
        else if (g.number == 2 && g.wire_type == 5) piece.score = std::bit_cast<float>(std::uint32_t(g.value));
        else if (g.number == 3 && g.wire_type == 0) {
          require<format_error>(g.value >= 1 && g.value <= 6, source, ": piece ", pieces.size(), " has unknown type ", g.value);
          piece.type = text::piece_type(g.value);
        }
      }
      pieces.push_back(std::move(piece));
    } else if (f.number == 2 && f.wire_type == 2) {
      detail::protobuf_reader r(f.bytes, source);
      while (!r.done()) {
        const auto g = r.next();
        if (g.wire_type != 0) continue;
        if (g.number == 3) model_type = g.value;
        else if (g.number == 24) options.whitespace_as_suffix = g.value != 0;  // treat_whitespace_as_suffix
        else if (g.number == 35) options.byte_fallback = g.value != 0;
        else if (g.number == 40) options.unk_id = detail::special_id(g.value);
        else if (g.number == 41) options.bos_id = detail::special_id(g.value);
        else if (g.number == 42) options.eos_id = detail::special_id(g.value);
      }
    } else if (f.number == 3 && f.wire_type == 2) {
      detail::protobuf_reader r(f.bytes, source);
      while (!r.done()) {
        const auto g = r.next();
        if (g.number == 1 && g.wire_type == 2) normalizer = std::string(g.bytes);
        else if (g.number == 2 && g.wire_type == 2) has_charsmap = !g.bytes.empty();
        else if (g.number == 3 && g.wire_type == 0) options.add_dummy_prefix = g.value != 0;
        else if (g.number == 4 && g.wire_type == 0) options.remove_extra_whitespaces = g.value != 0;
        else if (g.number == 5 && g.wire_type == 0) options.escape_whitespaces = g.value != 0;
      }
    }
  }
  require<format_error>(model_type == 2, source, ": model type ", model_type,
                        " is not BPE (2); lmkit reads SentencePiece BPE models (unigram models are not implemented)");
  require<format_error>(!has_charsmap, source, ": normalization rule '", normalizer,
                        "' needs SentencePiece's precompiled character map, which lmkit does not apply");
  try {
    return text::sentencepiece_tokenizer(std::move(pieces), options);
  } catch (const format_error& e) {
    throw format_error(lmkit::detail::concat(source, ": ", e.what()));
  }
}

inline text::sentencepiece_tokenizer read_sentencepiece_model(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_sentencepiece_model({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

}  // namespace lmkit::io
