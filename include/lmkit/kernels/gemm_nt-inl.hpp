// C [m x n] = A [m x k] * B^T with B stored [n x k]: both operands k-contiguous (activations times
// a weight stored [out, in]), computed without packing. Each tile of kTileRows x kTileCols outputs
// keeps one vector accumulator per output, holding partial sums along k; a step loads kTileRows
// vectors of A and kTileCols of B (widened from f16 / bf16) for kTileRows x kTileCols FMAs, then
// every accumulator is summed across its lanes once. The BLIS packing that kernels::gemm does is
// what a weight matrix read once per prompt cannot amortise: here the weights are read in place
// (a block of B rows stays in L2 while every row of A passes over it), as llamafile's tinyBLAS does.
// Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_GEMM_NT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_GEMM_NT_INL_HPP_
#undef LMKIT_KERNELS_GEMM_NT_INL_HPP_
#else
#define LMKIT_KERNELS_GEMM_NT_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>

#include <hwy/highway.h>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/matmul-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace gemm_nt_detail {

// Tile: kTileRows x kTileCols accumulators + kTileRows A vectors + one B vector in registers:
// 6 x 4 + 6 + 1 = 31 of AVX-512's 32, 3 x 4 + 3 + 1 = 16 of AVX2's 16. Six rows of A (from L1)
// against four weight rows (streamed from L2) measured faster than 4 x 6 (537 vs 526 tok/s for
// an f32 stories110M prompt, 622 vs 566 in f16).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr std::size_t kTileRows = 6, kTileCols = 4;
#else
constexpr std::size_t kTileRows = 3, kTileCols = 4;
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
/// The lane sums of four vectors, stored to out[0..3], with a few shuffles shared by all four (one
/// SumOfLanes per output cost ~15% of a tile at k = 768): pairs interleaved within each 128-bit
/// block, then 64-bit pairs, leave [sum a, sum b, sum c, sum e] per block; the blocks are added.
template <class D, class V>
HWY_INLINE void sum_lanes_of_4(D d, V a, V b, V c, V e, float* out) {
  const hn::Repartition<double, D> dd;
  const auto ab = hn::BitCast(dd, hn::Add(hn::InterleaveLower(d, a, b), hn::InterleaveUpper(d, a, b)));
  const auto ce = hn::BitCast(dd, hn::Add(hn::InterleaveLower(d, c, e), hn::InterleaveUpper(d, c, e)));
  const auto blocks = hn::Add(hn::BitCast(d, hn::InterleaveLower(dd, ab, ce)), hn::BitCast(d, hn::InterleaveUpper(dd, ab, ce)));
#if HWY_TARGET <= HWY_AVX3
  const hn::Half<D> d256;
  const auto halves = hn::Add(hn::LowerHalf(d256, blocks), hn::UpperHalf(d256, blocks));
#else
  const hn::Full256<float> d256;
  const auto halves = blocks;
#endif
  const hn::Half<decltype(d256)> d128;
  hn::StoreU(hn::Add(hn::LowerHalf(d128, halves), hn::UpperHalf(d128, halves)), d128, out);
}
#endif

/// One tile of R x C outputs (R <= kTileRows, C <= kTileCols) over the whole depth.
template <std::size_t R, std::size_t C, class T>
HWY_INLINE void tile(const float* HWY_RESTRICT a, std::size_t lda, const T* HWY_RESTRICT b, std::size_t ldb,
                     float* HWY_RESTRICT c, std::size_t ldc, std::size_t k) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[R][C];
  for (std::size_t i = 0; i < R; ++i)
    for (std::size_t j = 0; j < C; ++j) acc[i][j] = hn::Zero(d);
  std::size_t p = 0;
  for (; p + lanes <= k; p += lanes) {
    // The next tile's weight rows, at the same column: short rows end before the hardware
    // prefetcher has started on them.
    for (std::size_t j = 0; j < C; ++j) hwy::Prefetch(b + (C + j) * ldb + p);
    hn::Vec<decltype(d)> av[R];
    for (std::size_t i = 0; i < R; ++i) av[i] = hn::LoadU(d, a + i * lda + p);
    for (std::size_t j = 0; j < C; ++j) {
      const auto bv = gemm_detail::load_as_f32(d, b + j * ldb + p);
      for (std::size_t i = 0; i < R; ++i) acc[i][j] = hn::MulAdd(av[i], bv, acc[i][j]);
    }
  }
  for (std::size_t i = 0; i < R; ++i) {
    float sums[C];
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    if constexpr (C == 4) {
      sum_lanes_of_4(d, acc[i][0], acc[i][1], acc[i][2], acc[i][3], sums);
    } else
#endif
    {
      for (std::size_t j = 0; j < C; ++j) sums[j] = hn::GetLane(hn::SumOfLanes(d, acc[i][j]));
    }
    for (std::size_t j = 0; j < C; ++j) {
      float sum = sums[j];
      for (std::size_t q = p; q < k; ++q) sum += a[i * lda + q] * to_float(b[j * ldb + q]);
      c[i * ldc + j] = sum;
    }
  }
}

/// The tile for the (possibly short) edge: R and C picked at run time among the compiled shapes.
template <std::size_t R, class T>
HWY_INLINE void tile_cols(std::size_t cols, const float* a, std::size_t lda, const T* b, std::size_t ldb, float* c,
                          std::size_t ldc, std::size_t k) {
  if constexpr (R > 0) {
    switch (cols) {
      case 1: return tile<R, 1>(a, lda, b, ldb, c, ldc, k);
      case 2: return tile<R, 2>(a, lda, b, ldb, c, ldc, k);
      case 3: return tile<R, 3>(a, lda, b, ldb, c, ldc, k);
      case 4: return tile<R, 4>(a, lda, b, ldb, c, ldc, k);
    }
  }
}

template <class T>
HWY_INLINE void any_tile(std::size_t rows, std::size_t cols, const float* a, std::size_t lda, const T* b,
                         std::size_t ldb, float* c, std::size_t ldc, std::size_t k) {
  switch (rows) {
    case 1: return tile_cols<1>(cols, a, lda, b, ldb, c, ldc, k);
    case 2: return tile_cols<2>(cols, a, lda, b, ldb, c, ldc, k);
    case 3: return tile_cols<3>(cols, a, lda, b, ldb, c, ldc, k);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    case 4: return tile_cols<4>(cols, a, lda, b, ldb, c, ldc, k);
    case 5: return tile_cols<5>(cols, a, lda, b, ldb, c, ldc, k);
    case 6: return tile_cols<6>(cols, a, lda, b, ldb, c, ldc, k);
#endif
  }
}

template <class T>
void gemm_nt(const float* a, std::size_t lda, const T* b, std::size_t ldb, float* c, std::size_t ldc, std::size_t m,
             std::size_t n, std::size_t k, const thread_pool& pool) {
  // A task owns a block of B rows of about 192 KiB (kept in L2 while all of A passes over it),
  // a whole number of tiles; blocks are fixed by the shape, so the result is the same for any
  // thread count (each output is one tile's sum in one order).
  const std::size_t row_bytes = std::max<std::size_t>(k * sizeof(T), 1);
  const std::size_t block =
      std::max<std::size_t>(1, (std::size_t{192} << 10) / row_bytes / kTileCols) * kTileCols;
  pool.for_each_chunk(n, block, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    for (std::size_t i = 0; i < m; i += kTileRows) {
      const std::size_t rows = std::min(kTileRows, m - i);
      for (std::size_t j = begin; j < end; j += kTileCols) {
        const std::size_t cols = std::min(kTileCols, end - j);
        if (rows == kTileRows && cols == kTileCols)
          tile<kTileRows, kTileCols>(a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, k);
        else
          any_tile(rows, cols, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, k);
      }
    }
  });
}

}  // namespace gemm_nt_detail

/// C [m x n] (row stride ldc) = A [m x k] (f32, row stride lda) * B^T, B [n x k] of `b_type`
/// (row stride ldb). Shapes are checked by the caller (kernels.hpp).
inline void gemm_nt_direct(const float* a, std::size_t lda, const void* b, dtype b_type, std::size_t ldb, float* c,
                           std::size_t ldc, std::size_t m, std::size_t n, std::size_t k, const thread_pool& pool) {
  gemm_detail::with_element_type(b_type, [&](auto tag) HWY_ATTR {
    using T = decltype(tag);
    gemm_nt_detail::gemm_nt(a, lda, static_cast<const T*>(b), ldb, c, ldc, m, n, k, pool);
  });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
