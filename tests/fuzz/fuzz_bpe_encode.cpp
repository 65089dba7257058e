// Fuzz target: encoding any bytes with any of the three patterns either refuses them as invalid
// UTF-8 (lmkit::format_error) or gives ids that decode to exactly those bytes, the same whether
// special tokens are allowed or not in text without them, and the same from the heap and the scan
// merge. The first byte picks the pattern.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lmkit/text/bpe_tokenizer.hpp"
#include "small_bpe.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lmkit::text;
  static const bpe_tokenizer tokenizers[] = {
      {lmkit::fuzz::small_bpe_table(), split_pattern::gpt2, {{"<|end|>", 1000}}},
      {lmkit::fuzz::small_bpe_table(), split_pattern::cl100k_base, {{"<|end|>", 1000}}},
      {lmkit::fuzz::small_bpe_table(), split_pattern::o200k_base, {{"<|end|>", 1000}}},
  };
  if (size == 0) return 0;
  const bpe_tokenizer& tok = tokenizers[data[0] % 3];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto ids = tok.encode_ordinary(text);
    check(tok.decode(ids) == text);
    const auto with_special = tok.encode(text, allowed_special::all());
    check(tok.decode(with_special) == text);
    if (text.find("<|end|>") == std::string_view::npos) check(with_special == ids);
    // Both merge implementations on every piece.
    const auto& vocab = tok.vocabulary();
    token_id byte_ids[256];
    for (int b = 0; b < 256; ++b) byte_ids[b] = vocab.find(std::string(1, char(b)));
    auto rank_of = [&](const bpe_pair& p) {
      const token_id id = vocab.find(p.bytes);
      return id == token_bytes_table::none ? bpe_candidate{} : bpe_candidate{id, id};
    };
    bpe_workspace w;
    for_each_piece(tok.pattern(), text, [&](std::string_view piece) {
      std::vector<token_id> heap, scan;
      bpe_merge(piece, byte_ids, rank_of, w, heap, 0);
      bpe_merge(piece, byte_ids, rank_of, w, scan, std::size_t(-1));
      check(heap == scan);
    });
  } catch (const lmkit::format_error&) {
    check(!check_utf8(text));
  }
  return 0;
}
