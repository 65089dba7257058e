// Matrix products: a packed, cache-blocked GEMM (the BLIS structure: pack a KC-deep slice of B into
// NR-wide panels and of A into MR-high panels, then a register-blocked MR x NR micro-kernel), and
// matrix-vector products for the memory-bound shapes (one row or one column: decoding one token).
// Operands may be f32, bf16 or f16; packing widens them to f32, so one f32 micro-kernel serves all
// and accumulation is always f32. Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_MATMUL_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_MATMUL_INL_HPP_
#undef LMKIT_KERNELS_MATMUL_INL_HPP_
#else
#define LMKIT_KERNELS_MATMUL_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/convert-inl.hpp"
#include "lmkit/kernels/gemm_problem.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace gemm_detail {

// Tile shape. The micro-kernel keeps kRows x kVectors accumulators in registers plus kVectors
// loads of B and one broadcast of A: 6x2 + 3 = 15 of AVX2's 16 registers, 12x2 + 3 = 27 of
// AVX-512's 32. Two vectors across leaves kRows independent FMA chains per B load, enough to
// cover the FMA latency on two pipes.
#if HWY_TARGET == HWY_SCALAR
constexpr std::size_t kRows = 4;
#elif HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr std::size_t kRows = 12;
#else
constexpr std::size_t kRows = 6;
#endif
constexpr std::size_t kVectors = 2;
// Blocking: a task owns up to kBlockRows rows and kColPanelsPerBlock panels of columns. Its A block
// (kBlockRows x KC, 192 KiB) stays in L2; each B micro-panel (KC x NR: 16 KiB on AVX2) stays in L1
// while every row panel of the block passes over it.
constexpr std::size_t kDepth = 256;            // KC
constexpr std::size_t kBlockRows = 192;         // MC
constexpr std::size_t kRowPanelsPerBlock = (kBlockRows + kRows - 1) / kRows;
constexpr std::size_t kColPanelsPerBlock = 16;   // a task's columns = 16 * NR
// Matrix-vector products: rows at once (each x load feeds four rows), or vectors of columns held
// in registers across the whole depth.
constexpr std::size_t kGemvRows = 4;
constexpr std::size_t kGemvColumnVectors = 4;

template <class T>
HWY_INLINE float element(const T* base, std::size_t index) {
  return to_float(base[index]);
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
/// Transposes the 8 x 8 matrix held by r[0..7] (rows) in place: pairs of rows interleaved, then
/// pairs of pairs, then the 128-bit halves exchanged.
template <class D8, class V>
HWY_INLINE void transpose_8x8(D8 d, V (&r)[8]) {
  const hn::Repartition<double, D8> dd;
  V t[8], q[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = hn::InterleaveLower(d, r[i], r[i + 1]);      // r_i[0] r_i+1[0] r_i[1] r_i+1[1] | [4] [5]
    t[i + 1] = hn::InterleaveUpper(d, r[i], r[i + 1]);  // [2] [3] | [6] [7]
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      const auto lo = hn::BitCast(dd, t[i + j]), hi = hn::BitCast(dd, t[i + 2 + j]);
      q[i + 2 * j] = hn::BitCast(d, hn::InterleaveLower(dd, lo, hi));      // four rows' column 2j | 2j + 4
      q[i + 2 * j + 1] = hn::BitCast(d, hn::InterleaveUpper(dd, lo, hi));  // column 2j + 1 | 2j + 5
    }
  for (int j = 0; j < 4; ++j) {
    r[j] = hn::ConcatLowerLower(d, q[4 + j], q[j]);
    r[j + 4] = hn::ConcatUpperUpper(d, q[4 + j], q[j]);
  }
}

/// dst[j * dst_stride + i] = row(i)[j] for i, j < 8: eight loads, the register transpose, eight stores.
template <class Row>
HWY_INLINE void transpose_8x8_block(const Row& row, float* dst, std::size_t dst_stride) {
  const hn::Full256<float> d8;
  hn::Vec<decltype(d8)> r[8];
  for (std::size_t i = 0; i < 8; ++i) r[i] = hn::LoadU(d8, row(i));
  transpose_8x8(d8, r);
  for (std::size_t j = 0; j < 8; ++j) hn::StoreU(r[j], d8, dst + j * dst_stride);
}

/// dst[j * dst_stride + i] = row(i)[j] for i < 4, j < 8: the 8 x 8 transpose of the four rows
/// twice over, of which each result's lower half is stored (four floats).
template <class Row>
HWY_INLINE void transpose_4x8_block(const Row& row, float* dst, std::size_t dst_stride) {
  const hn::Full256<float> d8;
  const hn::Full128<float> d4;
  hn::Vec<decltype(d8)> r[8];
  for (std::size_t i = 0; i < 4; ++i) r[i] = r[i + 4] = hn::LoadU(d8, row(i));
  transpose_8x8(d8, r);
  for (std::size_t j = 0; j < 8; ++j) hn::StoreU(hn::LowerHalf(d4, r[j]), d4, dst + j * dst_stride);
}
#endif

/// op(A) rows [row0, row0 + rows) x depth [p0, p0 + kc) into one kRows-high panel, k-major,
/// zero-padded to kRows rows so the micro-kernel never branches.
template <class T>
HWY_INLINE void pack_a_panel(const T* a, std::size_t stride, bool transposed, std::size_t row0, std::size_t rows,
                             std::size_t p0, std::size_t kc, float* HWY_RESTRICT dst) {
  if (rows < kRows) std::fill(dst, dst + kc * kRows, 0.0f);
  if (transposed) {  // stored k x m: a row of storage holds one depth step for all rows
    for (std::size_t p = 0; p < kc; ++p) {
      const T* src = a + (p0 + p) * stride + row0;
      if (rows == kRows) {  // a count known here: vector moves, not a call to memmove per depth step
#pragma GCC unroll 16
        for (std::size_t i = 0; i < kRows; ++i) dst[p * kRows + i] = element(src, i);
      } else {
        for (std::size_t i = 0; i < rows; ++i) dst[p * kRows + i] = element(src, i);
      }
    }
  } else {
    // Depth outer, rows inner: the panel is written in order while the rows are read as kRows
    // sequential streams, which the prefetchers follow.
    const T* src[kRows];
    for (std::size_t i = 0; i < rows; ++i) src[i] = a + (row0 + i) * stride + p0;
    if (rows == kRows) {
      std::size_t whole_depth = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
      if constexpr (std::is_same_v<T, float> && kRows >= 8 && kRows % 4 == 0) {  // 8 x 8 (and 4 x 8) register transposes
        whole_depth = kc / 8 * 8;
        for (std::size_t p = 0; p < whole_depth; p += 8) {
          for (std::size_t i0 = 0; i0 + 8 <= kRows; i0 += 8)
            transpose_8x8_block([&](std::size_t i) { return src[i0 + i] + p; }, dst + p * kRows + i0, kRows);
          if constexpr (kRows % 8 == 4)
            transpose_4x8_block([&](std::size_t i) { return src[kRows - 4 + i] + p; }, dst + p * kRows + kRows - 4, kRows);
        }
      }
#endif
      for (std::size_t p = whole_depth; p < kc; ++p)
#pragma GCC unroll 16
        for (std::size_t i = 0; i < kRows; ++i) dst[p * kRows + i] = element(src[i], p);
    } else {
      for (std::size_t p = 0; p < kc; ++p)
        for (std::size_t i = 0; i < rows; ++i) dst[p * kRows + i] = element(src[i], p);
    }
  }
}

/// op(B) depth [p0, p0 + kc) x columns [col0, col0 + cols) into one NR-wide panel, k-major, zero-padded.
template <class T>
HWY_INLINE void pack_b_panel(const T* b, std::size_t stride, bool transposed, std::size_t p0, std::size_t kc,
                             std::size_t col0, std::size_t cols, std::size_t panel_width, float* HWY_RESTRICT dst) {
  if (cols < panel_width) std::fill(dst, dst + kc * panel_width, 0.0f);
  if (transposed) {  // stored n x k: read the panel's columns as parallel streams, write in order
    constexpr std::size_t kMaxWidth = 2 * HWY_LANES(float);
    const T* src[kMaxWidth];
    for (std::size_t j = 0; j < cols; ++j) src[j] = b + (col0 + j) * stride + p0;
    std::size_t whole_cols = 0, whole_depth = 0;  // the part moved by 8 x 8 register transposes
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    if constexpr (std::is_same_v<T, float>) {  // a weight matrix used transposed: the forward's B
      whole_cols = cols / 8 * 8;
      whole_depth = kc / 8 * 8;
      for (std::size_t j0 = 0; j0 < whole_cols; j0 += 8)
        for (std::size_t p = 0; p < whole_depth; p += 8)
          transpose_8x8_block([&](std::size_t i) { return src[j0 + i] + p; }, dst + p * panel_width + j0, panel_width);
    }
#endif
    for (std::size_t p = whole_depth; p < kc; ++p)
      for (std::size_t j = 0; j < whole_cols; ++j) dst[p * panel_width + j] = element(src[j], p);
    for (std::size_t p = 0; p < kc; ++p)
      for (std::size_t j = whole_cols; j < cols; ++j) dst[p * panel_width + j] = element(src[j], p);
  } else {
    for (std::size_t p = 0; p < kc; ++p) {
      const T* src = b + (p0 + p) * stride + col0;
      if constexpr (std::is_same_v<T, float>) {
        if (cols == panel_width) {  // whole panel rows: vector copies, not a memcpy call per row
          const hn::ScalableTag<float> d;
          for (std::size_t j = 0; j < cols; j += hn::Lanes(d)) hn::Store(hn::LoadU(d, src + j), d, dst + p * panel_width + j);
        } else {
          std::memcpy(dst + p * panel_width, src, cols * sizeof(float));
        }
      } else {
        for (std::size_t j = 0; j < cols; ++j) dst[p * panel_width + j] = element(src, j);
      }
    }
  }
}

/// C[rows x cols] (+)= A panel (kc x kRows) * B panel (kc x NR), all accumulators in registers.
template <class D>
HWY_INLINE void micro_kernel(D d, std::size_t kc, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, float* c,
                             std::size_t ldc, std::size_t rows, std::size_t cols, bool add) {
  using V = hn::Vec<D>;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t width = kVectors * lanes;
  // C's tile is read once, after the depth loop; without a prefetch its rows (often in L3 or DRAM
  // by then) stall the core for a fifth of the tile's time. Asking now hides that under the FMAs.
  for (std::size_t i = 0; i < rows; ++i) {
    hwy::Prefetch(c + i * ldc);
    hwy::Prefetch(c + i * ldc + width - 1);
  }
  V acc[kRows][kVectors];
#pragma GCC unroll 16
  for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kVectors; ++v) acc[i][v] = hn::Zero(d);

  for (std::size_t p = 0; p < kc; ++p) {
    V bv[kVectors];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < kVectors; ++v) bv[v] = hn::Load(d, b + p * width + v * lanes);
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kRows; ++i) {
      const V av = hn::Set(d, a[p * kRows + i]);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVectors; ++v) acc[i][v] = hn::MulAdd(av, bv[v], acc[i][v]);
    }
  }

  if (rows == kRows && cols == width) {
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kRows; ++i) {
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVectors; ++v) {
        float* out = c + i * ldc + v * lanes;
        hn::StoreU(add ? hn::Add(hn::LoadU(d, out), acc[i][v]) : acc[i][v], d, out);
      }
    }
    return;
  }
  // Edge tile: spill the accumulators and copy the valid part.
  HWY_ALIGN float tile[kRows * kVectors * hn::MaxLanes(d)];
  for (std::size_t i = 0; i < kRows; ++i)
    for (std::size_t v = 0; v < kVectors; ++v) hn::Store(acc[i][v], d, tile + i * width + v * lanes);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) c[i * ldc + j] = (add ? c[i * ldc + j] : 0.0f) + tile[i * width + j];
}

/// Workspace that lives as long as the calling thread: packing buffers are reused, not re-faulted.
inline float* workspace(std::size_t floats) {
  thread_local aligned_buffer<float> buffer;
  if (buffer.size() < floats) buffer = aligned_buffer<float>(floats, uninitialized);
  return buffer.data();
}

/// Panels [begin, end) of op(A), kRows rows each (A has m), over depth [p0, p0 + kc); panel r at
/// dst + (r - begin) * kRows * kc. (Filling a transposed A's panels a depth step at a time, each
/// storage row read once, was tried: no faster, in the product alone or in the training step.)
template <class T>
HWY_INLINE void pack_a_panels(const T* a, std::size_t stride, bool transposed, std::size_t m, std::size_t begin,
                              std::size_t end, std::size_t p0, std::size_t kc, float* HWY_RESTRICT dst) {
  for (std::size_t r = begin; r < end; ++r)
    pack_a_panel(a, stride, transposed, r * kRows, std::min(kRows, m - r * kRows), p0, kc, dst + (r - begin) * kRows * kc);
}

/// The packing routines for one element type, behind plain function pointers: only packing depends
/// on the operand types, so the blocked loop below is compiled once per target, not once per pair.
struct packers {
  void (*pack_a)(const void* a, std::size_t stride, bool transposed, std::size_t m, std::size_t begin, std::size_t end,
                 std::size_t p0, std::size_t kc, float* dst);
  void (*pack_b)(const void* b, std::size_t stride, bool transposed, std::size_t p0, std::size_t kc, std::size_t col0,
                 std::size_t cols, std::size_t panel_width, float* dst);
};

template <class T>
void pack_a_erased(const void* a, std::size_t stride, bool transposed, std::size_t m, std::size_t begin, std::size_t end,
                   std::size_t p0, std::size_t kc, float* dst) {
  pack_a_panels(static_cast<const T*>(a), stride, transposed, m, begin, end, p0, kc, dst);
}
template <class T>
void pack_b_erased(const void* b, std::size_t stride, bool transposed, std::size_t p0, std::size_t kc, std::size_t col0,
                   std::size_t cols, std::size_t panel_width, float* dst) {
  pack_b_panel(static_cast<const T*>(b), stride, transposed, p0, kc, col0, cols, panel_width, dst);
}

/// Calls f with a value of the element type that `type` names.
template <class F>
decltype(auto) with_element_type(dtype type, F&& f) {
  switch (type) {
    case dtype::bf16: return f(bf16{});
    case dtype::f16: return f(f16{});
    case dtype::f32: break;
  }
  return f(float{});
}

inline packers packers_for(dtype a, dtype b) {
  packers p{};
  with_element_type(a, [&](auto tag) { p.pack_a = pack_a_erased<decltype(tag)>; });
  with_element_type(b, [&](auto tag) { p.pack_b = pack_b_erased<decltype(tag)>; });
  return p;
}

/// How many cache lines prefetch_b_lines covers for a panel of `cols` columns and depth kc: a row
/// of kc elements each for stored-transposed B (one more line for a row that straddles), else kc.
inline std::size_t b_panel_lines(const matrix_operand& b, std::size_t kc, std::size_t cols) {
  return b.transposed ? cols * ((kc * size_of(b.type) + 63) / 64 + 1) : kc;
}

/// Prefetches part of the source lines of B's panel [col0, col0 + cols) x depth [p0, p0 + kc):
/// lines [first, first + count) of them, in an order that covers the panel once.
inline void prefetch_b_lines(const matrix_operand& b, std::size_t p0, std::size_t kc, std::size_t col0, std::size_t cols,
                             std::size_t first, std::size_t count) {
  const auto* base = static_cast<const char*>(b.data);
  const std::size_t element_size = size_of(b.type);
  if (b.transposed) {  // cols stored rows of kc elements each
    const std::size_t lines_per_row = b_panel_lines(b, kc, 1);
    for (std::size_t line = first; line < std::min(first + count, b_panel_lines(b, kc, cols)); ++line) {
      const std::size_t j = line / lines_per_row, l = line % lines_per_row;
      const std::size_t byte = std::min(l * 64, kc * element_size - 1);
      hwy::Prefetch(base + ((col0 + j) * b.stride + p0) * element_size + byte);
    }
  } else {  // kc stored rows, each a short run of cols elements
    for (std::size_t p = first; p < std::min(first + count, kc); ++p) {
      const char* row = base + ((p0 + p) * b.stride + col0) * element_size;
      hwy::Prefetch(row);
      hwy::Prefetch(row + cols * element_size - 1);
    }
  }
}

inline void gemm_packed(const gemm_problem& g, const thread_pool& pool) {
  const hn::ScalableTag<float> d;
  const std::size_t nr = kVectors * hn::Lanes(d);
  const packers pack = packers_for(g.a.type, g.b.type);
  const std::size_t row_panels = (g.m + kRows - 1) / kRows;
  const std::size_t col_panels = (g.n + nr - 1) / nr;
  const std::size_t row_blocks = (row_panels + kRowPanelsPerBlock - 1) / kRowPanelsPerBlock;
  // Column blocks of up to kColPanelsPerBlock panels; narrower when that leaves fewer than two
  // tasks per thread (a training step's small products), so that every thread has work. Blocking
  // never changes a result: each C element is summed over the depth in the same order by one task.
  const std::size_t threads = static_cast<std::size_t>(pool.threads());
  const std::size_t wanted_col_blocks = threads > 1 ? (2 * threads + row_blocks - 1) / row_blocks : 1;
  const std::size_t col_panels_per_block =
      std::clamp<std::size_t>((col_panels + wanted_col_blocks - 1) / wanted_col_blocks, 1, kColPanelsPerBlock);
  const std::size_t col_blocks = (col_panels + col_panels_per_block - 1) / col_panels_per_block;
  // With one row block (a prompt of up to kBlockRows tokens) every B panel is used by one task:
  // the task packs it right before use, into L1, and B is read from memory once. With several,
  // B is packed once per depth slice for all of them, as BLIS does.
  const bool shared_b = row_blocks > 1;
  const std::size_t a_floats = row_panels * kRows * kDepth;
  float* packed_a = workspace(a_floats + (shared_b ? col_panels * nr * kDepth : 0));
  float* packed_b = packed_a + a_floats;

  for (std::size_t pc = 0; pc < g.k; pc += kDepth) {
    const std::size_t kc = std::min(kDepth, g.k - pc);
    const bool add = g.accumulate || pc > 0;
    pool.for_each_chunk(row_panels, 8, [&](std::size_t begin, std::size_t end) HWY_ATTR {
      pack.pack_a(g.a.data, g.a.stride, g.a.transposed, g.m, begin, end, pc, kc, packed_a + begin * kRows * kc);
    });
    if (shared_b) {
      pool.for_each_chunk(col_panels, 8, [&](std::size_t begin, std::size_t end) HWY_ATTR {
        for (std::size_t q = begin; q < end; ++q)
          pack.pack_b(g.b.data, g.b.stride, g.b.transposed, pc, kc, q * nr, std::min(nr, g.n - q * nr), nr,
                      packed_b + q * nr * kc);
      });
    }
    // Tasks are (row block, column block) pairs; each C element belongs to exactly one task and
    // sees the depth in the same order, so the result does not depend on the thread count.
    pool.for_each_index(row_blocks * col_blocks, [&](std::size_t task) HWY_ATTR {
      thread_local aligned_buffer<float> b_panel;  // one per worker thread, reused across calls
      if (!shared_b && b_panel.size() < kDepth * nr) b_panel = aligned_buffer<float>(kDepth * nr, uninitialized);
      const std::size_t rb = task % row_blocks, cb = task / row_blocks;
      const std::size_t r_begin = rb * kRowPanelsPerBlock, r_end = std::min(row_panels, r_begin + kRowPanelsPerBlock);
      const std::size_t q_end = std::min(col_panels, (cb + 1) * col_panels_per_block);
      for (std::size_t q = cb * col_panels_per_block; q < q_end; ++q) {
        const std::size_t col = q * nr;
        const std::size_t cols = std::min(nr, g.n - col);
        const float* panel = packed_b + q * nr * kc;
        // While the row panels pass over this B panel, the next one is fetched from memory a
        // slice per micro-kernel call, so that packing it does not wait on DRAM.
        std::size_t next_cols = 0, lines_per_call = 0;
        if (!shared_b) {
          pack.pack_b(g.b.data, g.b.stride, g.b.transposed, pc, kc, col, cols, nr, b_panel.data());
          panel = b_panel.data();
          next_cols = q + 1 < q_end ? std::min(nr, g.n - col - nr) : 0;
          lines_per_call = next_cols ? (b_panel_lines(g.b, kc, next_cols) + (r_end - r_begin) - 1) / (r_end - r_begin) : 0;
        }
        for (std::size_t r = r_begin; r < r_end; ++r) {
          const std::size_t row = r * kRows;
          if (next_cols) prefetch_b_lines(g.b, pc, kc, col + nr, next_cols, (r - r_begin) * lines_per_call, lines_per_call);
          micro_kernel(d, kc, packed_a + r * kRows * kc, panel, g.c + row * g.ldc + col, g.ldc, std::min(kRows, g.m - row),
                       cols, add);
        }
      }
    });
  }
}

/// Loads lanes of any element type as f32.
template <class T, class DF>
HWY_INLINE hn::Vec<DF> load_as_f32(DF df, const T* p) {
  if constexpr (std::is_same_v<T, float>) return hn::LoadU(df, p);
  else if constexpr (std::is_same_v<T, bf16>) return load_bf16(df, reinterpret_cast<const std::uint16_t*>(p));
  else return load_f16(df, reinterpret_cast<const std::uint16_t*>(p));
}

/// y[r * y_stride] (+)= dot(W[r, :], x) for r in [0, rows): W stored rows x k with row stride.
template <class T>
void gemv_rows(const T* w, std::size_t stride, std::size_t rows, std::size_t k, const float* x, float* y,
               std::size_t y_stride, bool accumulate, const thread_pool& pool) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t grain = std::max<std::size_t>(kGemvRows, (16384 / std::max<std::size_t>(k, 1)) / kGemvRows * kGemvRows);
  pool.for_each_chunk(rows, grain, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    std::size_t r = begin;
    for (; r + kGemvRows <= end; r += kGemvRows) {
      const T* w0 = w + r * stride;
      const T* w1 = w0 + stride;
      const T* w2 = w1 + stride;
      const T* w3 = w2 + stride;
      auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
      // Rows of a decoding matrix are short (1.5-3 KiB): the hardware prefetcher barely starts on
      // one before it ends, so the next group's rows are prefetched at the same column while this
      // group is read. (Without it, f16 decoding ran at 60% of the bandwidth.)
      const bool prefetch_next = r + 2 * kGemvRows <= rows;  // across the chunk's end too
      constexpr std::size_t per_line = 64 / sizeof(T);  // a prefetch per line, not per vector
      std::size_t p = 0;
      for (; p + lanes <= k; p += lanes) {
        if (prefetch_next && p % per_line == 0) {
          const T* next = w3 + stride + p;
          hwy::Prefetch(next);
          hwy::Prefetch(next + stride);
          hwy::Prefetch(next + 2 * stride);
          hwy::Prefetch(next + 3 * stride);
        }
        const auto xv = hn::LoadU(d, x + p);
        s0 = hn::MulAdd(load_as_f32(d, w0 + p), xv, s0);
        s1 = hn::MulAdd(load_as_f32(d, w1 + p), xv, s1);
        s2 = hn::MulAdd(load_as_f32(d, w2 + p), xv, s2);
        s3 = hn::MulAdd(load_as_f32(d, w3 + p), xv, s3);
      }
      float sums[kGemvRows] = {hn::GetLane(hn::SumOfLanes(d, s0)), hn::GetLane(hn::SumOfLanes(d, s1)),
                            hn::GetLane(hn::SumOfLanes(d, s2)), hn::GetLane(hn::SumOfLanes(d, s3))};
      for (; p < k; ++p) {
        sums[0] += element(w0, p) * x[p];
        sums[1] += element(w1, p) * x[p];
        sums[2] += element(w2, p) * x[p];
        sums[3] += element(w3, p) * x[p];
      }
      for (std::size_t i = 0; i < kGemvRows; ++i) {
        float& out = y[(r + i) * y_stride];
        out = accumulate ? out + sums[i] : sums[i];
      }
    }
    for (; r < end; ++r) {
      const T* w0 = w + r * stride;
      auto s0 = hn::Zero(d);
      std::size_t p = 0;
      for (; p + lanes <= k; p += lanes) s0 = hn::MulAdd(load_as_f32(d, w0 + p), hn::LoadU(d, x + p), s0);
      float sum = hn::GetLane(hn::SumOfLanes(d, s0));
      for (; p < k; ++p) sum += element(w0, p) * x[p];
      float& out = y[r * y_stride];
      out = accumulate ? out + sum : sum;
    }
  });
}

/// y[j * y_stride] (+)= sum_p x[p] W[p, j] for j in [0, cols): W stored k x cols with row stride.
template <class T>
void gemv_cols(const T* w, std::size_t stride, std::size_t k, std::size_t cols, const float* x, float* y,
               std::size_t y_stride, bool accumulate, const thread_pool& pool) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t block = kGemvColumnVectors * lanes;
  const std::size_t grain = block * std::max<std::size_t>(1, 256 / block);  // whole blocks per chunk
  pool.for_each_chunk(cols, grain, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    HWY_ALIGN float sums[kGemvColumnVectors * HWY_LANES(float)];
    for (std::size_t j = begin; j < end; j += block) {
      const std::size_t width = std::min(block, end - j);
      if (width == block) {
        auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
        for (std::size_t p = 0; p < k; ++p) {
          const auto xv = hn::Set(d, x[p]);
          const T* row = w + p * stride + j;
          s0 = hn::MulAdd(xv, load_as_f32(d, row), s0);
          s1 = hn::MulAdd(xv, load_as_f32(d, row + lanes), s1);
          s2 = hn::MulAdd(xv, load_as_f32(d, row + 2 * lanes), s2);
          s3 = hn::MulAdd(xv, load_as_f32(d, row + 3 * lanes), s3);
        }
        hn::Store(s0, d, sums);
        hn::Store(s1, d, sums + lanes);
        hn::Store(s2, d, sums + 2 * lanes);
        hn::Store(s3, d, sums + 3 * lanes);
      } else {
        std::fill(sums, sums + width, 0.0f);
        for (std::size_t p = 0; p < k; ++p) {
          const T* row = w + p * stride + j;
          for (std::size_t c = 0; c < width; ++c) sums[c] += x[p] * element(row, c);
        }
      }
      for (std::size_t c = 0; c < width; ++c) {
        float& out = y[(j + c) * y_stride];
        out = accumulate ? out + sums[c] : sums[c];
      }
    }
  });
}

/// Copies the first stored row (or column) of M into contiguous f32, widening 16-bit types.
template <class T>
void gather_vector(const T* m, std::size_t stride, bool along_storage_row, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = element(m, along_storage_row ? i : i * stride);
}

/// y (+)= op(W) x for a matrix-vector product: `dot_per_stored_row` chooses a dot product per
/// stored row (gemv_rows) or a sweep down the stored rows (gemv_cols).
inline void gemv(const matrix_operand& w, bool dot_per_stored_row, std::size_t out_size, std::size_t k, const float* x,
                 float* y, std::size_t y_stride, bool accumulate, const thread_pool& pool) {
  with_element_type(w.type, [&](auto tag) HWY_ATTR {
    using T = decltype(tag);
    const T* data = static_cast<const T*>(w.data);
    if (dot_per_stored_row) gemv_rows(data, w.stride, out_size, k, x, y, y_stride, accumulate, pool);
    else gemv_cols(data, w.stride, k, out_size, x, y, y_stride, accumulate, pool);
  });
}

/// The vector operand of a one-row or one-column product, widened to contiguous f32.
inline const float* gathered(const matrix_operand& v, bool along_storage_row, std::size_t n) {
  thread_local aligned_buffer<float> buffer;
  if (buffer.size() < n) buffer = aligned_buffer<float>(n, uninitialized);
  with_element_type(v.type, [&](auto tag) HWY_ATTR {
    using T = decltype(tag);
    gather_vector(static_cast<const T*>(v.data), v.stride, along_storage_row, n, buffer.data());
  });
  return buffer.data();
}

}  // namespace gemm_detail

// C (+)= op(A) op(B); see gemm_problem. Shapes are checked by the caller (kernels.hpp).
inline void gemm(const gemm_problem& g, const thread_pool& pool) {
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    if (!g.accumulate)
      for (std::size_t i = 0; i < g.m; ++i) std::fill(g.c + i * g.ldc, g.c + i * g.ldc + g.n, 0.0f);
    return;
  }
  if (g.m == 1) {
    // One row of op(A) times op(B): a vector-matrix product over B's storage.
    const float* x = gemm_detail::gathered(g.a, !g.a.transposed, g.k);
    gemm_detail::gemv(g.b, g.b.transposed, g.n, g.k, x, g.c, 1, g.accumulate, pool);
  } else if (g.n == 1) {
    // op(A) times one column of op(B): a matrix-vector product over A's storage, into C's column.
    const float* x = gemm_detail::gathered(g.b, g.b.transposed, g.k);
    gemm_detail::gemv(g.a, !g.a.transposed, g.m, g.k, x, g.c, g.ldc, g.accumulate, pool);
  } else {
    gemm_detail::gemm_packed(g, pool);
  }
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
