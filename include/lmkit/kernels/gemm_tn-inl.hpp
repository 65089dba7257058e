// C (+)= A^T B with A [k x m] and B [k x n] stored row-major: the weight gradient of a block of
// rows (dW += dY^T X over a few hundred rows, the rows just written). kernels::gemm packs A^T with
// a copy of `rows` floats per depth step that the compiler turns into a call to memmove, a few
// floats from each of hundreds of long rows; here a task packs its block of A's columns with one
// masked vector move per depth step, and B is read in place (its panel stays in L1 while the
// task's tiles pass over it). Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_GEMM_TN_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_GEMM_TN_INL_HPP_
#undef LMKIT_KERNELS_GEMM_TN_INL_HPP_
#else
#define LMKIT_KERNELS_GEMM_TN_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace gemm_tn_detail {

constexpr std::size_t kLanes = HWY_LANES(float);
// Tile: kRows x 2 vectors of accumulators, 2 loads of B, one broadcast of A: AVX-512 12 x 2 + 3 of
// 32 registers, AVX2 6 x 2 + 3 of 16, 128-bit 4 x 2 + 3.
#if HWY_TARGET == HWY_SCALAR
constexpr std::size_t kRows = 4;
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr std::size_t kRows = 12;
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
constexpr std::size_t kRows = 6;
#else
constexpr std::size_t kRows = 4;
#endif
constexpr std::size_t kVectors = 2;
constexpr std::size_t kWidth = kVectors * kLanes;
// A task: kTileRowsPerTask tiles of rows (its packed A^T slice, 8 x 12 x 256 floats on AVX-512,
// stays in L2) across every column panel, in depth slices of kDepth (a B panel slice, 256 x 32
// floats, stays in L1 while the task's tiles pass over it).
constexpr std::size_t kTileRowsPerTask = 8;
constexpr std::size_t kDepth = 256;

// A packed panel row: kRows floats padded to whole vectors (16 on AVX-512), so that packing is
// aligned full-vector stores.
constexpr std::size_t kPackedRow = (kRows + kLanes - 1) / kLanes * kLanes;
// Rows of A fetched ahead while packing: each is in its own page, where the prefetchers do not follow.
constexpr std::size_t kPrefetchRows = 8;

/// dst[0, kPackedRow) = src[0, n) (n <= kRows), the rest zero; reads past n only while `whole`
/// (a whole packed row's worth of floats exists at src).
template <class D>
HWY_INLINE void copy_panel_row(D d, const float* src, std::size_t n, bool whole, float* HWY_RESTRICT dst) {
  for (std::size_t i = 0; i < kPackedRow; i += kLanes) {
    const auto v = whole ? hn::LoadU(d, src + i) : load_tail(d, src + i, i < n ? std::min(kLanes, n - i) : 0);
    hn::Store(v, d, dst + i);
  }
}

/// C tile [rows x cols] (+)= packed A^T tile (kc x kRows) * B (kc rows in place, columns j0..).
template <bool Full, class D>
HWY_INLINE void tile(D d, std::size_t kc, const float* HWY_RESTRICT a, const float* b, std::size_t ldb,
                     std::size_t rows, std::size_t cols, float* c, std::size_t ldc, bool add) {
  using V = hn::Vec<D>;
  V acc[kRows][kVectors];
#pragma GCC unroll 16
  for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kVectors; ++v) acc[i][v] = hn::Zero(d);
  for (std::size_t p = 0; p < kc; ++p) {
    const float* b_row = b + p * ldb;
    V bv[kVectors];
    if constexpr (Full) {
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVectors; ++v) bv[v] = hn::LoadU(d, b_row + v * kLanes);
    } else {
      for (std::size_t v = 0; v < kVectors; ++v) {
        const std::size_t start = std::min(cols, v * kLanes);
        bv[v] = load_tail(d, b_row + start, std::min(kLanes, cols - start));
      }
    }
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kRows; ++i) {
      const V av = hn::Set(d, a[p * kPackedRow + i]);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVectors; ++v) acc[i][v] = hn::MulAdd(av, bv[v], acc[i][v]);
    }
  }
  if constexpr (Full) {
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVectors; ++v) {
        float* out = c + i * ldc + v * kLanes;
        hn::StoreU(add ? hn::Add(hn::LoadU(d, out), acc[i][v]) : acc[i][v], d, out);
      }
  } else {
    HWY_ALIGN float spill[kRows * kWidth];
    for (std::size_t i = 0; i < kRows; ++i)
      for (std::size_t v = 0; v < kVectors; ++v) hn::Store(acc[i][v], d, spill + i * kWidth + v * kLanes);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) c[i * ldc + j] = (add ? c[i * ldc + j] : 0.0f) + spill[i * kWidth + j];
  }
}

}  // namespace gemm_tn_detail

// C [m x n] (+)= A^T B, A stored [k x m] (row stride lda), B stored [k x n] (ldb); shapes checked
// by kernels.hpp.
inline void gemm_tn(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
                    std::size_t ldb, float* c, std::size_t ldc, bool accumulate, const thread_pool& pool) {
  using namespace gemm_tn_detail;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate)
      for (std::size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  const hn::ScalableTag<float> d;
  const std::size_t tile_rows = (m + kRows - 1) / kRows, panels = (n + kWidth - 1) / kWidth;
  const std::size_t blocks = (tile_rows + kTileRowsPerTask - 1) / kTileRowsPerTask;
  // Tasks are blocks of C's rows: each C element belongs to one and sums its depth in one order,
  // so the result does not depend on the thread count.
  pool.for_each_index(blocks, [&](std::size_t block) HWY_ATTR {
    thread_local aligned_buffer<float> packed;  // one per worker thread, reused across calls
    if (packed.size() < kTileRowsPerTask * kDepth * kPackedRow)
      packed = aligned_buffer<float>(kTileRowsPerTask * kDepth * kPackedRow, uninitialized);
    const std::size_t t_begin = block * kTileRowsPerTask, t_end = std::min(tile_rows, t_begin + kTileRowsPerTask);
    for (std::size_t p0 = 0; p0 < k; p0 += kDepth) {
      const std::size_t kc = std::min(kDepth, k - p0);
      const bool add = accumulate || p0 > 0;
      // A^T's slice for the block, tile by tile: kc rows of kRows floats.
      const std::size_t col0 = t_begin * kRows, block_cols = std::min(m, t_end * kRows) - col0;
      for (std::size_t p = 0; p < kc; ++p) {
        const float* a_row = a + (p0 + p) * lda;
        if (p + kPrefetchRows < kc)
          for (std::size_t j = 0; j < block_cols; j += 16) hwy::Prefetch(a_row + kPrefetchRows * lda + col0 + j);
        for (std::size_t t = t_begin; t < t_end; ++t) {
          const std::size_t col = t * kRows;
          copy_panel_row(d, a_row + col, std::min(kRows, m - col), col + kPackedRow <= m,
                         packed.data() + ((t - t_begin) * kc + p) * kPackedRow);
        }
      }
      for (std::size_t q = 0; q < panels; ++q) {
        const std::size_t col = q * kWidth, cols = std::min(kWidth, n - col);
        const float* bt = b + p0 * ldb + col;
        for (std::size_t t = t_begin; t < t_end; ++t) {
          const std::size_t row = t * kRows, rows = std::min(kRows, m - row);
          const float* at = packed.data() + (t - t_begin) * kc * kPackedRow;
          float* ct = c + row * ldc + col;
          if (rows == kRows && cols == kWidth) tile<true>(d, kc, at, bt, ldb, rows, cols, ct, ldc, add);
          else tile<false>(d, kc, at, bt, ldb, rows, cols, ct, ldc, add);
        }
      }
    }
  });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
