// C (+)= A B with B prepacked (prepacked_matrix.hpp) and A read in place: the product of a small
// batch of rows by a matrix used many times (an RNN's recurrent weights at every time step). A
// micro-kernel keeps kRows x (two panels) of C in registers over a depth slice and broadcasts A's
// elements straight from its rows, so nothing is packed per call. Per-target code, re-included
// once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_PREPACKED_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_PREPACKED_INL_HPP_
#undef LMKIT_KERNELS_PREPACKED_INL_HPP_
#else
#define LMKIT_KERNELS_PREPACKED_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/prepacked_matrix.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace prepacked_detail {

constexpr std::size_t kPanel = prepacked_panel_width;
constexpr std::size_t kLanes = HWY_LANES(float);
constexpr std::size_t kVectors = 2 * kPanel / kLanes;  // a tile is two panels wide
// Rows per tile: the accumulators (kRows x kVectors), kVectors loads of B and one broadcast of A
// fit the registers: AVX-512 8 x 2 + 3 of 32 (8 rows divide the usual batch sizes, where 12 would
// leave a third of the last tile empty at batch 32); AVX2 2 x 4 + 5 of 16; 128-bit 1 x 8 + 9 of 16.
#if HWY_TARGET == HWY_SCALAR
constexpr std::size_t kRows = 1;
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr std::size_t kRows = 8;
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
constexpr std::size_t kRows = 2;
#else
constexpr std::size_t kRows = 1;
#endif
// Depth per slice: the B slice of one tile (kDepth x 32 floats, 32 KiB) stays in L1 while every
// row tile passes over it.
constexpr std::size_t kDepth = 256;

/// C tile [rows x cols] (+)= A rows (at depth p0) x B slice (two panels at depth p0).
template <class D>
HWY_INLINE void tile(D d, std::size_t kc, const float* const* a, const float* HWY_RESTRICT b0, const float* HWY_RESTRICT b1,
                     float* c, std::size_t ldc, std::size_t rows, std::size_t cols, bool add) {
  using V = hn::Vec<D>;
  constexpr std::size_t half = kVectors / 2;
  V acc[kRows][kVectors];
#pragma GCC unroll 16
  for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 16
    for (std::size_t v = 0; v < kVectors; ++v) acc[i][v] = hn::Zero(d);
  for (std::size_t p = 0; p < kc; ++p) {
    V bv[kVectors];
#pragma GCC unroll 16
    for (std::size_t v = 0; v < half; ++v) {
      bv[v] = hn::Load(d, b0 + p * kPanel + v * kLanes);
      bv[half + v] = hn::Load(d, b1 + p * kPanel + v * kLanes);
    }
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kRows; ++i) {
      const V av = hn::Set(d, a[i][p]);
#pragma GCC unroll 16
      for (std::size_t v = 0; v < kVectors; ++v) acc[i][v] = hn::MulAdd(av, bv[v], acc[i][v]);
    }
  }
  if (rows == kRows && cols == kVectors * kLanes) {
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 16
      for (std::size_t v = 0; v < kVectors; ++v) {
        float* out = c + i * ldc + v * kLanes;
        hn::StoreU(add ? hn::Add(hn::LoadU(d, out), acc[i][v]) : acc[i][v], d, out);
      }
    return;
  }
  HWY_ALIGN float spill[kRows * kVectors * kLanes];
  for (std::size_t i = 0; i < kRows; ++i)
    for (std::size_t v = 0; v < kVectors; ++v) hn::Store(acc[i][v], d, spill + (i * kVectors + v) * kLanes);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) c[i * ldc + j] = (add ? c[i * ldc + j] : 0.0f) + spill[i * kVectors * kLanes + j];
}

}  // namespace prepacked_detail

// C [m x n] (+)= A [m x k] (row stride lda) * B (packed, k x n); shapes checked by kernels.hpp.
inline void gemm_prepacked(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
                           float* c, std::size_t ldc, bool accumulate, const thread_pool& pool) {
  using namespace prepacked_detail;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate)
      for (std::size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  const hn::ScalableTag<float> d;
  constexpr std::size_t tile_width = 2 * kPanel;
  const std::size_t tiles = (n + tile_width - 1) / tile_width;
  const std::size_t panel_floats = k * kPanel;
  // Column tiles per task: at least ~256k multiply-adds each (a few microseconds), a split fixed
  // by the problem alone; each C element belongs to one task and sums its depth in one order.
  const std::size_t grain = std::max<std::size_t>(1, (std::size_t{1} << 18) / (m * k * tile_width));
  pool.for_each_chunk(tiles, grain, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    for (std::size_t p0 = 0; p0 < k; p0 += kDepth) {
      const std::size_t kc = std::min(kDepth, k - p0);
      const bool add = accumulate || p0 > 0;
      for (std::size_t t = begin; t < end; ++t) {
        const float* b0 = b + 2 * t * panel_floats + p0 * kPanel;
        const std::size_t col = t * tile_width, cols = std::min(tile_width, n - col);
        for (std::size_t r0 = 0; r0 < m; r0 += kRows) {
          const float* rows[kRows];
          for (std::size_t i = 0; i < kRows; ++i) rows[i] = a + std::min(r0 + i, m - 1) * lda + p0;
          tile(d, kc, rows, b0, b0 + panel_floats, c + r0 * ldc + col, ldc, std::min(kRows, m - r0), cols, add);
        }
      }
    }
  });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
