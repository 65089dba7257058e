// A weight matrix of any storage type, as a model file holds it: f32, f16, bf16, or ggml's block
// formats Q8_0 and Q4_0 (32 weights per block sharing one f16 scale). The kernels that read it are
// kernels::matmul_weights and kernels::dequantize_row (kernels.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"

namespace lmkit {

/// Weights per block of the GGUF / ggml block formats.
inline constexpr std::size_t quant_block_size = 32;

/// GGUF / ggml block formats: 32 weights per block, one f16 scale.
/// Q8_0: x = d * qs[i].
struct block_q8_0 {
  f16 d;
  std::int8_t qs[32];
};
/// Q4_0, ggml's layout: element i < 16 is (qs[i] & 15) - 8, element i + 16 is (qs[i] >> 4) - 8;
/// x = d * that.
struct block_q4_0 {
  f16 d;
  std::uint8_t qs[16];
};
static_assert(sizeof(block_q8_0) == 34 && sizeof(block_q4_0) == 18, "the GGUF block sizes");

enum class weight_type : std::uint8_t { f32, f16, bf16, q8_0, q4_0 };

constexpr std::string_view name_of(weight_type t) {
  switch (t) {
    case weight_type::f32: return "f32";
    case weight_type::f16: return "f16";
    case weight_type::bf16: return "bf16";
    case weight_type::q8_0: return "q8_0";
    case weight_type::q4_0: return "q4_0";
  }
  return "?";
}

/// Whether `t` stores blocks of 32 weights (cols must then be a multiple of 32).
constexpr bool is_block_type(weight_type t) { return t == weight_type::q8_0 || t == weight_type::q4_0; }

/// Bytes of one row of `cols` weights (cols must be a multiple of 32 for the block types).
inline std::size_t row_bytes(weight_type t, std::size_t cols) {
  if (is_block_type(t))
    require<shape_error>(cols % quant_block_size == 0, "row_bytes: ", name_of(t), " rows hold whole blocks of 32, not ",
                         cols, " weights");
  switch (t) {
    case weight_type::f32: return 4 * cols;
    case weight_type::f16:
    case weight_type::bf16: return 2 * cols;
    case weight_type::q8_0: return cols / quant_block_size * sizeof(block_q8_0);
    case weight_type::q4_0: return cols / quant_block_size * sizeof(block_q4_0);
  }
  return 0;
}

/// A weight matrix [rows = outputs][cols = inputs], row-major and contiguous, of any weight_type,
/// pointing at memory owned elsewhere (usually a mapped model file). No alignment is assumed beyond
/// 1 byte for the block types, 2 for f16 / bf16 and 4 for f32: the kernels load it unaligned.
struct weight_matrix {
  weight_type type = weight_type::f32;
  const void* data = nullptr;
  std::size_t rows = 0, cols = 0;
};

}  // namespace lmkit
