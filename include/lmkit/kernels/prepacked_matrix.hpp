// A right-hand side packed once for many products with it. kernels::gemm packs its B operand on
// every call, which is right for one large product; a recurrent network multiplies the same
// weights by a small batch of states at every time step, where that packing (and the packing of
// the small A) costs as much as a fifth of the product. A prepacked_matrix is packed once per
// forward, and kernels::gemm_prepacked reads A's rows where they are.
//
// Layout: panels of 16 columns, each depth-major over the whole depth k (element (p, j) of panel q
// at (q * k + p) * 16 + j), zero-padded to an even number of panels. The same on every target, so
// a matrix packed under one dispatch target serves any other.
//
// Packed for bf16 products (PyTorch's autocast; `train --products bf16`), B is rounded to bf16: on
// a CPU with AMX tiles or AVX512-BF16, into the bf16 kernels' own packed form (amx_gemm.hpp), so
// that a product only packs its small A; elsewhere the f32 panels hold the rounded values and
// gemm_prepacked rounds A's rows, the same products summed in another order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/kernels/amx_gemm.hpp"
#include "lmkit/kernels/gemm_problem.hpp"

namespace lmkit::kernels {

inline constexpr std::size_t prepacked_panel_width = 16;

class prepacked_matrix {
 public:
  /// Sizes the storage for a k x n matrix, so that packing one later does not allocate.
  void reserve(std::size_t k, std::size_t n) {
    const std::size_t floats = padded_panels(n) * k * prepacked_panel_width;
    if (storage_.size() < floats) storage_ = aligned_buffer<float>(floats, uninitialized);
  }

  /// Packs op(B) [k x n] (f32; `transposed` when B is stored n x k, as a weight [out, in] is), for
  /// products in `products` precision. Reuses the storage of an earlier packing when it is large
  /// enough.
  void pack(const matrix_operand& b, std::size_t k, std::size_t n, product_precision products = product_precision::f32) {
    pack_choosing_route(b, k, n, products, /*bf16_kernels_allowed=*/true);
  }

  /// As pack(), but always into the f32 panels: bf16 products take the route of CPUs without AMX
  /// or AVX512-BF16 (B rounded in the panels, A's rows when multiplied), whatever this CPU has --
  /// gemm_bf16_portable's counterpart, so that the tests run that route everywhere.
  void pack_portable(const matrix_operand& b, std::size_t k, std::size_t n,
                     product_precision products = product_precision::f32) {
    pack_choosing_route(b, k, n, products, /*bf16_kernels_allowed=*/false);
  }

  std::size_t depth() const { return k_; }
  std::size_t columns() const { return n_; }
  product_precision products() const { return products_; }
  /// The f32 panels (not to be read when bf16_data() is not null).
  const float* data() const { return storage_.data(); }
  /// B in the bf16 kernels' packed form (amx_detail::pack_b_whole), or null when it is in the f32 panels.
  const std::uint16_t* bf16_data() const { return bf16_packed_ ? bf16_storage_.data() : nullptr; }

 private:
  void pack_choosing_route(const matrix_operand& b, std::size_t k, std::size_t n, product_precision products,
                           bool bf16_kernels_allowed) {
    require<argument_error>(b.type == dtype::f32, "prepacked_matrix: only f32 operands are packed");
    require<shape_error>(b.stride >= (b.transposed ? k : n), "prepacked_matrix: stride ", b.stride,
                         " is smaller than the stored row");
    require<argument_error>(b.data != nullptr || k * n == 0, "prepacked_matrix: no data");
    k_ = k;
    n_ = n;
    products_ = products;
    bf16_packed_ = false;
#if LMKIT_HAS_AMX_PATH
    if (products == product_precision::bf16 && bf16_kernels_allowed && n > 0 &&
        (amx_bf16_usable() || bf16_dot_usable())) {
      const std::size_t size = amx_detail::whole_b_size(k, n);
      if (bf16_storage_.size() < size) bf16_storage_ = aligned_buffer<std::uint16_t>(size, uninitialized);
      amx_detail::pack_b_whole(b, k, n, bf16_storage_.data());
      bf16_packed_ = true;
      return;
    }
#else
    (void)bf16_kernels_allowed;
#endif
    pack_f32(b, k, n);
    if (products == product_precision::bf16)
      for (std::size_t i = 0, size = padded_panels(n) * k * prepacked_panel_width; i < size; ++i)
        storage_[i] = bf16::from_float(storage_[i]).to_float();
  }

  void pack_f32(const matrix_operand& b, std::size_t k, std::size_t n) {
    constexpr std::size_t w = prepacked_panel_width;
    const std::size_t panels = padded_panels(n);
    reserve(k, n);
    const float* src = static_cast<const float*>(b.data);
    for (std::size_t q = 0; q < panels; ++q) {
      float* panel = storage_.data() + q * k * w;
      const std::size_t col0 = q * w, cols = col0 < n ? std::min(w, n - col0) : 0;
      if (cols < w)
        for (std::size_t p = 0; p < k; ++p) std::fill(panel + p * w + cols, panel + (p + 1) * w, 0.0f);
      if (b.transposed) {  // stored n x k: each stored row is one column, read in order
        for (std::size_t j = 0; j < cols; ++j) {
          const float* column = src + (col0 + j) * b.stride;
          for (std::size_t p = 0; p < k; ++p) panel[p * w + j] = column[p];
        }
      } else if (cols == w) {  // a fixed-length copy per depth step: inline moves, not a call to memmove
        for (std::size_t p = 0; p < k; ++p) {
          const float* row = src + p * b.stride + col0;
          for (std::size_t j = 0; j < w; ++j) panel[p * w + j] = row[j];
        }
      } else {
        for (std::size_t p = 0; p < k; ++p) std::copy_n(src + p * b.stride + col0, cols, panel + p * w);
      }
    }
  }

  static std::size_t padded_panels(std::size_t n) {
    return ((n + prepacked_panel_width - 1) / prepacked_panel_width + 1) / 2 * 2;
  }

  aligned_buffer<float> storage_;
  aligned_buffer<std::uint16_t> bf16_storage_;
  std::size_t k_ = 0, n_ = 0;
  product_precision products_ = product_precision::f32;
  bool bf16_packed_ = false;
};

}  // namespace lmkit::kernels
