// The weights of a pretrained decoder, as views: a matrix points into the mapped model file when
// lmkit's kernels read its type directly (f32, f16, bf16, q8_0, q4_0), so a model costs no copy and
// no load time beyond the page faults of its first use. Small vectors (norm weights, biases) are
// widened to f32 copies. What cannot be viewed in place is converted once into storage owned here:
// GPT-2's Conv1D matrices (stored [in, out], transposed to [out, in]).
//
// Loaders fill this through `weight_loader`, which checks every tensor's type and shape against
// the config and names the tensor in the error.
#pragma once

#include <cstddef>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/kernels/kernels.hpp"

namespace lmkit::models {

struct decoder_layer_weights {
  std::span<const float> attn_norm, attn_norm_bias;  // an empty bias: none (llama)
  weight_matrix wq, wk, wv, wo;                      // [q_width, dim], [kv_width, dim] x2, [dim, q_width]
  std::span<const float> bq, bk, bv, bo;
  std::span<const float> ffn_norm, ffn_norm_bias;
  weight_matrix w_gate;                              // llama only: [hidden, dim]
  weight_matrix w_up, w_down;                        // [hidden, dim], [dim, hidden]
  std::span<const float> b_up, b_down;
};

struct decoder_weights {
  weight_matrix token_embedding;     // [vocab, dim]
  weight_matrix position_embedding;  // gpt2: [context, dim]; empty for llama
  std::vector<decoder_layer_weights> layers;
  std::span<const float> final_norm, final_norm_bias;
  weight_matrix output;              // [vocab, dim]; the token embedding itself when tied

  // What keeps the views valid: the mapped files, and the copies made at load.
  std::vector<std::shared_ptr<const void>> files;
  std::deque<std::vector<float>> owned_floats;
  std::deque<aligned_buffer<std::byte>> owned_bytes;  // 64-byte aligned: whole cache lines per row load

  /// Bytes of every matrix one decoded token reads (all but the embeddings' unused rows).
  std::size_t decode_bytes() const {
    std::size_t n = row_bytes(output.type, output.cols) * output.rows;
    for (const auto& l : layers)
      for (const weight_matrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
        if (w->data) n += row_bytes(w->type, w->cols) * w->rows;
    return n;
  }
};

/// One tensor as a file holds it: its name, element type, shape (outermost first, as PyTorch and
/// safetensors write it; GGUF's reversed order is turned around by its loader) and bytes.
struct tensor_ref {
  std::string name;
  weight_type type = weight_type::f32;
  std::vector<std::size_t> shape;
  std::span<const std::byte> bytes;
};

/// Looks tensors up by name in one model file (or a set of shards).
using tensor_lookup = std::function<std::optional<tensor_ref>(std::string_view name)>;

/// Builds weight views from a file's tensors, checking each against the shape the config implies.
class weight_loader {
 public:
  weight_loader(tensor_lookup lookup, std::string source, decoder_weights& into)
      : lookup_(std::move(lookup)), source_(std::move(source)), weights_(into) {}

  const std::string& source() const { return source_; }

  std::optional<tensor_ref> find(std::string_view name) const { return lookup_(name); }

  tensor_ref require(std::string_view name) const {
    auto t = lookup_(name);
    if (!t) throw format_error(lmkit::detail::concat(source_, ": tensor ", name, " is missing"));
    return *t;
  }

  /// A matrix [rows, cols] ([out, in]) viewed in place.
  weight_matrix matrix(std::string_view name, std::size_t rows, std::size_t cols) const {
    return view(require(name), rows, cols);
  }

  /// The same for a tensor that may be absent (a tied output layer).
  std::optional<weight_matrix> optional_matrix(std::string_view name, std::size_t rows, std::size_t cols) const {
    auto t = lookup_(name);
    if (!t) return std::nullopt;
    return view(*t, rows, cols);
  }

  /// A matrix stored transposed ([in, out], GPT-2's Conv1D), copied once into [out, in] order in
  /// its own type (16-bit types stay 16-bit: the copy is exact).
  weight_matrix transposed_matrix(std::string_view name, std::size_t rows, std::size_t cols) const {
    const tensor_ref t = require(name);
    check_shape(t, {cols, rows});
    require_float_type(t);
    const std::size_t size = t.type == weight_type::f32 ? 4 : 2;
    auto& out = weights_.owned_bytes.emplace_back(rows * cols * size);
    for (std::size_t i = 0; i < cols; ++i)
      for (std::size_t o = 0; o < rows; ++o)
        std::memcpy(out.data() + (o * cols + i) * size, t.bytes.data() + (i * rows + o) * size, size);
    return {t.type, out.data(), rows, cols};
  }

  /// A vector of n values (a norm's weight, a bias), widened to an f32 copy.
  std::span<const float> vector(std::string_view name, std::size_t n) const { return widen(require(name), n); }

  /// The same, or an empty span when the file has no such tensor.
  std::span<const float> optional_vector(std::string_view name, std::size_t n) const {
    auto t = lookup_(name);
    return t ? widen(*t, n) : std::span<const float>{};
  }

  /// A view of rows [first, first + rows) of a matrix (one part of a fused q/k/v matrix).
  static weight_matrix row_slice(const weight_matrix& w, std::size_t first, std::size_t rows) {
    return {w.type, static_cast<const std::byte*>(w.data) + first * row_bytes(w.type, w.cols), rows, w.cols};
  }

 private:
  void check_shape(const tensor_ref& t, std::initializer_list<std::size_t> want) const {
    bool same = t.shape.size() == want.size();
    for (std::size_t i = 0; same && i < want.size(); ++i) same = t.shape[i] == want.begin()[i];
    if (!same) {
      std::string got, wanted;
      for (auto d : t.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : want) wanted += (wanted.empty() ? "" : ", ") + std::to_string(d);
      throw format_error(lmkit::detail::concat(source_, ": tensor ", t.name, " has shape [", got, "] but the config wants [",
                                        wanted, "]"));
    }
  }

  void require_float_type(const tensor_ref& t) const {
    if (t.type != weight_type::f32 && t.type != weight_type::f16 && t.type != weight_type::bf16)
      throw format_error(lmkit::detail::concat(source_, ": tensor ", t.name, " is ", name_of(t.type),
                                        "; this layout needs f32, f16 or bf16"));
  }

  weight_matrix view(const tensor_ref& t, std::size_t rows, std::size_t cols) const {
    check_shape(t, {rows, cols});
    if ((t.type == weight_type::q8_0 || t.type == weight_type::q4_0) && cols % 32 != 0)
      throw format_error(lmkit::detail::concat(source_, ": tensor ", t.name, " is ", name_of(t.type), " with rows of ", cols,
                                        " (not whole blocks of 32)"));
    if (t.bytes.size() != rows * row_bytes(t.type, cols))
      throw format_error(lmkit::detail::concat(source_, ": tensor ", t.name, " holds ", t.bytes.size(), " bytes, ", rows, "x",
                                        cols, " ", name_of(t.type), " needs ", rows * row_bytes(t.type, cols)));
    return {t.type, t.bytes.data(), rows, cols};
  }

  std::span<const float> widen(const tensor_ref& t, std::size_t n) const {
    // A vector may be written [n] or [1, n].
    std::size_t elements = 1;
    for (auto d : t.shape) elements *= d;
    if (elements != n || t.shape.empty() || t.shape.back() != n)
      throw format_error(lmkit::detail::concat(source_, ": tensor ", t.name, " should hold ", n, " values"));
    require_float_type(t);
    auto& out = weights_.owned_floats.emplace_back(n);
    if (t.bytes.size() != n * (t.type == weight_type::f32 ? 4 : 2))
      throw format_error(lmkit::detail::concat(source_, ": tensor ", t.name, " has ", t.bytes.size(), " bytes for ", n,
                                        " values"));
    for (std::size_t i = 0; i < n; ++i) {
      const std::byte* p = t.bytes.data() + i * (t.type == weight_type::f32 ? 4 : 2);
      if (t.type == weight_type::f32) {
        std::memcpy(&out[i], p, 4);
      } else {
        std::uint16_t bits;
        std::memcpy(&bits, p, 2);
        out[i] = t.type == weight_type::f16 ? to_float(std::bit_cast<f16>(bits)) : to_float(std::bit_cast<bf16>(bits));
      }
    }
    return out;
  }

  tensor_lookup lookup_;
  std::string source_;
  decoder_weights& weights_;
};

}  // namespace lmkit::models
