// C [m x n] = A [m x k] * B^T with B stored [n x k]: both operands k-contiguous (activations times
// a weight stored [out, in]). The weights pass from memory once per product, read in place: the
// BLIS packing that kernels::gemm does (a transpose of every weight panel) is what a weight matrix
// read once per prompt cannot amortise. Two ways, by the number of rows of A:
// - a few rows (speculative drafts, short appends): tiles of kTileRows x kTileCols outputs, each
//   with a vector accumulator of partial sums along k (A and B rows loaded as they are, B widened
//   from f16 / bf16 per load), summed across lanes at the end, as llamafile's tinyBLAS does;
// - two vectors of rows or more (a prompt): C^T = B A^T with A's rows as lanes (gemm_nt_panels):
//   A is transposed once, which is cheap beside the product, and B's rows are broadcast.
// Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_GEMM_NT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_GEMM_NT_INL_HPP_
#undef LMKIT_KERNELS_GEMM_NT_INL_HPP_
#else
#define LMKIT_KERNELS_GEMM_NT_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include <hwy/highway.h>

#include "lmkit/core/aligned_buffer.hpp"
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

// ---- Prompt-sized products: C^T = B A^T, the prompt's rows as vector lanes ----
// A panel of kPanelVectors vectors' worth of A's rows is transposed once (panel[p][t] = A[t][p]);
// a block of kBlockRows weight rows (widened to f32 once when stored as f16 / bf16) then meets each
// panel: a step along k loads the panel's vectors and broadcasts one weight per row, for
// kBlockRows x kPanelVectors FMAs into accumulators that each hold part of a column of C. No lane
// sums, no widening per FMA, and the weights still pass from memory once per product.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr std::size_t kBlockRows = 14;  // 14 x 2 accumulators + 2 panel vectors + 1 broadcast = 31
#else
constexpr std::size_t kBlockRows = 6;  // 6 x 2 + 2 + 1 = 15 of 16
#endif
constexpr std::size_t kPanelVectors = 2;

/// A buffer per thread for each of the two uses, reused across calls (never re-faulted).
enum class scratch_use { panels, block };
template <scratch_use U>
HWY_INLINE float* scratch(std::size_t floats) {
  thread_local aligned_buffer<float> buffer;
  if (buffer.size() < floats) buffer = aligned_buffer<float>(floats, uninitialized);
  return buffer.data();
}

// Depth is padded to whole groups of kGroup (one cache line of f32), with zeros in both operands.
constexpr std::size_t kGroup = 16;

/// panel[p * width + t] = a[t * lda + p] for t < rows and p < k; zero for rows <= t < width and
/// for k <= p < depth (k rounded up to kGroup).
HWY_INLINE void pack_panel(const float* HWY_RESTRICT a, std::size_t lda, std::size_t rows, std::size_t k,
                           std::size_t width, float* HWY_RESTRICT panel) {
  const std::size_t depth = (k + kGroup - 1) / kGroup * kGroup;
  std::size_t whole_rows = 0, whole_depth = 0;  // the part moved by 8 x 8 transposes
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  whole_rows = rows / 8 * 8;
  whole_depth = k / 8 * 8;
  for (std::size_t t0 = 0; t0 < whole_rows; t0 += 8)
    for (std::size_t p0 = 0; p0 < whole_depth; p0 += 8)
      gemm_detail::transpose_8x8_block([&](std::size_t i) { return a + (t0 + i) * lda + p0; }, panel + p0 * width + t0,
                                       width);
#endif
  auto element = [&](std::size_t t, std::size_t p) { return t < rows && p < k ? a[t * lda + p] : 0.0f; };
  for (std::size_t p = whole_depth; p < depth; ++p)
    for (std::size_t t = 0; t < whole_rows; ++t) panel[p * width + t] = element(t, p);
  for (std::size_t p = 0; p < depth; ++p)
    for (std::size_t t = whole_rows; t < width; ++t) panel[p * width + t] = element(t, p);
}

/// The block's kBlockRows weight rows (`src`, row stride ldb; rows past `rows` are zero) widened
/// to f32 and interleaved by groups: block[(g * kBlockRows + i) * kGroup + u] = w[i][g * kGroup + u],
/// so a step along k finds all its weights in one cache line, at fixed offsets from one pointer.
template <class T>
HWY_INLINE void pack_block(const T* HWY_RESTRICT src, std::size_t ldb, std::size_t rows, std::size_t k,
                           float* HWY_RESTRICT block) {
  const hn::CappedTag<float, kGroup> d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t groups = (k + kGroup - 1) / kGroup;
  for (std::size_t i = 0; i < kBlockRows; ++i) {
    const T* in = src + i * ldb;
    for (std::size_t g = 0; g < groups; ++g) {
      float* out = block + (g * kBlockRows + i) * kGroup;
      const std::size_t p0 = g * kGroup;
      if (i < rows && p0 + kGroup <= k) {
        for (std::size_t u = 0; u < kGroup; u += lanes) hn::Store(gemm_detail::load_as_f32(d, in + p0 + u), d, out + u);
      } else {
        for (std::size_t u = 0; u < kGroup; ++u) out[u] = i < rows && p0 + u < k ? to_float(in[p0 + u]) : 0.0f;
      }
    }
  }
}

/// out[i * width + t] = sum over p of w_i[p] * panel[p * width + t], for every i below kBlockRows
/// and t below width = NV vectors; `block` as pack_block leaves it, `groups` groups deep.
template <std::size_t NV>
HWY_INLINE void block_times_panel(const float* HWY_RESTRICT block, const float* HWY_RESTRICT panel,
                                  std::size_t groups, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t width = NV * lanes;
  hn::Vec<decltype(d)> acc[kBlockRows][NV];
  for (std::size_t i = 0; i < kBlockRows; ++i)
    for (std::size_t v = 0; v < NV; ++v) acc[i][v] = hn::Zero(d);
  for (std::size_t g = 0; g < groups; ++g, block += kBlockRows * kGroup) {
    for (std::size_t u = 0; u < kGroup; ++u, panel += width) {
      hn::Vec<decltype(d)> av[NV];
      for (std::size_t v = 0; v < NV; ++v) av[v] = hn::Load(d, panel + v * lanes);
      for (std::size_t i = 0; i < kBlockRows; ++i) {
        const auto wv = hn::Set(d, block[i * kGroup + u]);
        for (std::size_t v = 0; v < NV; ++v) acc[i][v] = hn::MulAdd(wv, av[v], acc[i][v]);
      }
    }
  }
  for (std::size_t i = 0; i < kBlockRows; ++i)
    for (std::size_t v = 0; v < NV; ++v) hn::Store(acc[i][v], d, out + i * width + v * lanes);
}

/// One pass of gemm_nt_panels: all m rows of A packed at once.
template <class T>
void gemm_nt_panels_pass(const float* a, std::size_t lda, const T* b, std::size_t ldb, float* c, std::size_t ldc,
                         std::size_t m, std::size_t n, std::size_t k, const thread_pool& pool) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t full = kPanelVectors * lanes;  // tokens per panel
  const std::size_t panels = (m + full - 1) / full;
  const std::size_t groups = (k + kGroup - 1) / kGroup;
  const std::size_t depth = groups * kGroup;
  // The last panel is one vector wide when its tokens fit in one.
  auto width_of = [&](std::size_t q) { return std::min(m - q * full, full) <= lanes ? lanes : full; };
  float* packed = scratch<scratch_use::panels>(panels * full * depth);
  pool.for_each_chunk(panels, 1, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    for (std::size_t q = begin; q < end; ++q)
      pack_panel(a + q * full * lda, lda, std::min(full, m - q * full), k, width_of(q), packed + q * full * depth);
  });
  // Tasks take whole weight blocks, four per thread for balance. Every output is one block's sum
  // in one order whatever the split, so the result is the same for any thread count.
  const std::size_t blocks = (n + kBlockRows - 1) / kBlockRows;
  const std::size_t tasks = std::size_t{4} * static_cast<std::size_t>(pool.threads());
  const std::size_t chunk = (blocks + tasks - 1) / tasks * kBlockRows;
  pool.for_each_chunk(n, chunk, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    HWY_ALIGN float tile[kBlockRows * kPanelVectors * hn::MaxLanes(d)];
    float* block = scratch<scratch_use::block>(kBlockRows * depth);
    for (std::size_t j = begin; j < end; j += kBlockRows) {
      const std::size_t rows = std::min(kBlockRows, end - j);
      pack_block(b + j * ldb, ldb, rows, k, block);
      for (std::size_t q = 0; q < panels; ++q) {
        const std::size_t tokens = std::min(full, m - q * full);
        const std::size_t width = width_of(q);
        const float* panel = packed + q * full * depth;
        if (width == full)
          block_times_panel<kPanelVectors>(block, panel, groups, tile);
        else
          block_times_panel<1>(block, panel, groups, tile);
        for (std::size_t t = 0; t < tokens; ++t) {
          float* out = c + (q * full + t) * ldc + j;
          for (std::size_t i = 0; i < rows; ++i) out[i] = tile[i * width + t];
        }
      }
    }
  });
}

/// C = A B^T through panels, in passes of as many rows of A as keep their panels within about
/// 1 MiB (in L2 while every weight block meets them); the weights are read once per pass. Every
/// output is one block's sum in one order, whatever the passes.
template <class T>
void gemm_nt_panels(const float* a, std::size_t lda, const T* b, std::size_t ldb, float* c, std::size_t ldc,
                    std::size_t m, std::size_t n, std::size_t k, const thread_pool& pool) {
  const std::size_t full = kPanelVectors * hn::Lanes(hn::ScalableTag<float>());
  const std::size_t depth = (k + kGroup - 1) / kGroup * kGroup;
  const std::size_t rows_per_pass = std::max(full, (std::size_t{1} << 20) / (depth * sizeof(float)) / full * full);
  for (std::size_t m0 = 0; m0 < m; m0 += rows_per_pass)
    gemm_nt_panels_pass(a + m0 * lda, lda, b, ldb, c + m0 * ldc, ldc, std::min(rows_per_pass, m - m0), n, k, pool);
}

}  // namespace gemm_nt_detail

/// C [m x n] (row stride ldc) = A [m x k] (f32, row stride lda) * B^T, B [n x k] of `b_type`
/// (row stride ldb). Shapes are checked by the caller (kernels.hpp).
inline void gemm_nt_direct(const float* a, std::size_t lda, const void* b, dtype b_type, std::size_t ldb, float* c,
                           std::size_t ldc, std::size_t m, std::size_t n, std::size_t k, const thread_pool& pool) {
  gemm_detail::with_element_type(b_type, [&](auto tag) HWY_ATTR {
    using T = decltype(tag);
    if (m >= gemm_nt_detail::kPanelVectors * hn::Lanes(hn::ScalableTag<float>()))
      gemm_nt_detail::gemm_nt_panels(a, lda, static_cast<const T*>(b), ldb, c, ldc, m, n, k, pool);
    else
      gemm_nt_detail::gemm_nt(a, lda, static_cast<const T*>(b), ldb, c, ldc, m, n, k, pool);
  });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
