// The description of one matrix product, shared by the dispatched kernel and its callers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lmkit/core/dtype.hpp"

namespace lmkit::kernels {

/// One operand of a product: `rows x cols` as the product sees it (after the optional transpose).
/// Element (r, c) lives at data[r * stride + c], or at data[c * stride + r] when `transposed`
/// (the matrix is stored as its transpose: a weight stored [out, in] used as in x out).
struct matrix_operand {
  const void* data = nullptr;
  dtype type = dtype::f32;
  std::size_t stride = 0;  // elements between consecutive stored rows
  bool transposed = false;
};

/// How a product's terms are formed. f32: exactly, in f32. bf16: from the operands rounded to
/// bf16 (each product then exact), summed in f32 -- PyTorch's autocast to bfloat16; on a CPU with
/// AMX the products run on its tiles (kernels/amx_gemm.hpp), many times faster than f32 FMAs.
enum class product_precision : std::uint8_t { f32, bf16 };

constexpr std::string_view name_of(product_precision p) { return p == product_precision::bf16 ? "bf16" : "f32"; }

/// The precision `name_of` names ("f32", "bf16"); nothing for any other text.
constexpr std::optional<product_precision> product_precision_named(std::string_view name) {
  if (name == "f32") return product_precision::f32;
  if (name == "bf16") return product_precision::bf16;
  return std::nullopt;
}

/// C[m x n] (row stride ldc) = op(A)[m x k] * op(B)[k x n], added to C when `accumulate`.
struct gemm_problem {
  std::size_t m = 0, n = 0, k = 0;
  matrix_operand a, b;
  float* c = nullptr;
  std::size_t ldc = 0;
  bool accumulate = false;
  product_precision products = product_precision::f32;
};

}  // namespace lmkit::kernels
