// llama2.c's tokenizer.bin: a u32 maximum piece length, then per piece an f32 score, an i32 byte
// length and the bytes. Spaces are written as ' ' (SentencePiece's "▁"), <unk>, BOS and EOS are ids
// 0, 1, 2, and <0xNN> pieces are byte fallback, as in Llama's tokenizer from which such files are
// exported. The number of pieces is not stored: it is whatever the file holds.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/text/sentencepiece_tokenizer.hpp"

namespace lmkit::io {

inline text::sentencepiece_tokenizer parse_llama2c_tokenizer(std::string_view bytes, std::string_view source) {
  auto read_u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  require<format_error>(bytes.size() >= 4, source, ": shorter than its 4-byte header");
  const std::uint32_t max_length = read_u32(0);
  std::vector<text::sentencepiece_piece> pieces;
  std::size_t pos = 4;
  int byte_pieces = 0;
  while (pos < bytes.size()) {
    const std::size_t id = pieces.size();
    require<format_error>(bytes.size() - pos >= 8, source, ": piece ", id, " is cut off at byte ", pos);
    const float score = std::bit_cast<float>(read_u32(pos));
    const auto length = static_cast<std::int32_t>(read_u32(pos + 4));
    pos += 8;
    require<format_error>(length > 0 && std::uint32_t(length) <= max_length, source, ": piece ", id, " has length ",
                          length, " (the header allows 1 to ", max_length, ")");
    require<format_error>(std::size_t(length) <= bytes.size() - pos, source, ": piece ", id, " runs past the end");
    std::string raw(bytes.substr(pos, std::size_t(length)));
    pos += std::size_t(length);
    text::sentencepiece_piece piece{{}, score, text::piece_type::normal};
    if (id == 0) {
      piece.type = text::piece_type::unknown;
    } else if (id == 1 || id == 2) {
      piece.type = text::piece_type::control;
    } else if (raw.size() == 6 && raw.starts_with("<0x") && raw.back() == '>') {
      piece.type = text::piece_type::byte;
      ++byte_pieces;
    }
    for (const char c : raw) {
      if (c == ' ' && piece.type == text::piece_type::normal)
        piece.text += text::sentencepiece_tokenizer::space_symbol;
      else
        piece.text.push_back(c);
    }
    pieces.push_back(std::move(piece));
  }
  require<format_error>(pieces.size() >= 3, source, ": ", pieces.size(), " pieces; <unk>, BOS and EOS need three");
  text::sentencepiece_options options;
  options.byte_fallback = byte_pieces == 256;
  options.unk_id = 0;
  options.bos_id = 1;
  options.eos_id = 2;
  try {
    return text::sentencepiece_tokenizer(std::move(pieces), options);
  } catch (const format_error& e) {
    throw format_error(lmkit::detail::concat(source, ": ", e.what()));
  }
}

inline text::sentencepiece_tokenizer read_llama2c_tokenizer(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_llama2c_tokenizer({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

}  // namespace lmkit::io
