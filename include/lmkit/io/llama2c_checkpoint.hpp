// llama2.c's legacy checkpoint (`run.c`'s format): seven int32s — dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len — then f32 weights back to back in a fixed order. A
// negative vocab_size means the file has its own classifier at the end; otherwise the output layer
// is the token embedding. The file is mapped; each tensor is a span into it.
//
// (llama2.c's later "version 1/2" exports start with the magic "ak42"; they are refused by name.)
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"

namespace lmkit::io {

struct llama2c_header {
  std::int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier() const { return vocab_size > 0; }
  std::size_t vocab() const { return static_cast<std::size_t>(vocab_size < 0 ? -std::int64_t{vocab_size} : vocab_size); }
};

/// A named tensor of the checkpoint: shape outermost first, f32 data in the file.
struct llama2c_tensor {
  std::vector<std::size_t> shape;
  std::span<const std::byte> bytes;
};

class llama2c_checkpoint {
 public:
  explicit llama2c_checkpoint(const std::filesystem::path& path) : file_(std::make_shared<mapped_file>(path)) {
    parse({file_->data(), file_->size()}, path.string());
  }
  /// Parses bytes held elsewhere (tests, fuzzing); they must outlive the object.
  static llama2c_checkpoint parse_bytes(std::span<const std::byte> bytes, std::string source) {
    llama2c_checkpoint c;
    c.parse(bytes, std::move(source));
    return c;
  }

  const llama2c_header& header() const { return header_; }
  const std::string& source() const { return source_; }
  /// Tensors under Hugging Face-like names of the layers they hold ("layers.3.wq", "tok_embeddings", ...).
  const std::map<std::string, llama2c_tensor, std::less<>>& tensors() const { return tensors_; }
  const llama2c_tensor* find(std::string_view name) const {
    const auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }
  /// What keeps the tensors' bytes valid (null for parse_bytes).
  std::shared_ptr<const void> keep_alive() const { return file_; }

 private:
  llama2c_checkpoint() = default;

  void parse(std::span<const std::byte> bytes, std::string source) {
    source_ = std::move(source);
    auto fail = [&](auto... parts) { throw format_error(lmkit::detail::concat(source_, ": ", parts...)); };
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "ak42", 4) == 0)
      fail("a llama2.c 'ak42' (version 1+) export; lmkit reads the legacy header format (export.py --version 0)");
    if (bytes.size() < 28) fail("a llama2.c checkpoint needs a 28-byte header, the file has ", bytes.size(), " bytes");
    std::int32_t h[7];
    std::memcpy(h, bytes.data(), 28);
    header_ = {h[0], h[1], h[2], h[3], h[4], h[5], h[6]};
    const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; ++i)
      if (i != 5 && (h[i] <= 0 || h[i] > (1 << 24)))
        fail("header field ", names[i], " = ", h[i], " is not a plausible size (is this a llama2.c checkpoint?)");
    if (h[5] == 0 || h[5] < -(1 << 24) || h[5] > (1 << 24)) fail("header field vocab_size = ", h[5], " is not plausible");
    if (h[0] % h[3] != 0) fail("dim ", h[0], " is not a multiple of n_heads ", h[3]);
    if (h[3] % h[4] != 0) fail("n_heads ", h[3], " is not a multiple of n_kv_heads ", h[4]);

    const std::size_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], context = h[6];
    const std::size_t vocab = header_.vocab(), head_dim = dim / heads, kv_dim = kv_heads * head_dim;
    std::size_t offset = 28;
    auto take = [&](const std::string& name, std::vector<std::size_t> shape) {
      std::size_t n = 1;
      for (auto d : shape) n *= d;
      const std::size_t size = n * 4;
      if (bytes.size() < offset || bytes.size() - offset < size)
        fail("truncated: tensor ", name, " needs bytes [", offset, ", ", offset + size, ") of a ", bytes.size(),
             "-byte file");
      tensors_[name] = {std::move(shape), bytes.subspan(offset, size)};
      offset += size;
    };
    auto per_layer = [&](const std::string& what, std::vector<std::size_t> shape) {
      for (std::size_t l = 0; l < layers; ++l) take("layers." + std::to_string(l) + "." + what, shape);
    };
    take("tok_embeddings", {vocab, dim});
    per_layer("attention_norm", {dim});
    per_layer("wq", {dim, dim});
    per_layer("wk", {kv_dim, dim});
    per_layer("wv", {kv_dim, dim});
    per_layer("wo", {dim, dim});
    per_layer("ffn_norm", {dim});
    per_layer("w1", {hidden, dim});
    per_layer("w2", {dim, hidden});
    per_layer("w3", {hidden, dim});
    take("norm", {dim});
    take("freq_cis_real", {context, head_dim / 2});  // unused: lmkit computes the angles itself
    take("freq_cis_imag", {context, head_dim / 2});
    if (!header_.shared_classifier()) take("output", {vocab, dim});
    if (offset != bytes.size())
      fail(bytes.size() - offset, " bytes after the last tensor (the header's sizes do not describe this file)");
  }

  std::shared_ptr<mapped_file> file_;
  std::string source_;
  llama2c_header header_;
  std::map<std::string, llama2c_tensor, std::less<>> tensors_;
};

}  // namespace lmkit::io
