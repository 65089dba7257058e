// Products of bf16-rounded operands on Intel AMX tiles (or AVX512-BF16 dot products): C (+)=
// bf16(A) * bf16(B), with the products exact and the sums in f32 (TDPBF16PS, VDPBF16PS), what
// PyTorch's autocast to bfloat16 asks of a matmul.
//
// Highway (1.0.3) has no AMX or AVX512-BF16 operations, so this path is written with the
// compiler's intrinsics, in functions that carry their own target attributes; it runs only when
// `amx_bf16_usable()` (the CPU has AMX-BF16 and AVX512-BF16, the OS enables tile state and grants
// this process the right to use it). CPUs with AVX512-BF16 but no tiles (AMD Zen 4, Intel Cooper
// Lake) run the same packing and blocking with VDPBF16PS dot products in vector registers instead
// (`bf16_dot_usable()`, gemm_bf16_dot): twice the f32 FMA's products per instruction. kernels::gemm
// calls one of them for a problem that asks for bf16 products, and otherwise rounds the operands
// itself and runs the f32 kernel: the same products, summed in another order.
//
// Layout. A is packed to bf16 tiles of 16 rows x 32 k (k contiguous, what a tile row of A is); B
// to the pair-interleaved ("VNNI") form TDPBF16PS reads, tiles of 16 pair rows x 16 columns x 2:
// pair row p holds, for each column, B[2p][col] and B[2p+1][col] side by side. Padding is zero,
// so partial tiles need no special kernel, only a masked store of C. C is made of 32 x 32 blocks,
// each four 16 x 16 f32 tiles fed by two tiles of A and two of B per step of 32 along k; every
// element's sum runs over k in one fixed order, so the result does not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/gemm_problem.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define LMKIT_HAS_AMX_PATH 1
#else
#define LMKIT_HAS_AMX_PATH 0
#endif

namespace lmkit::kernels {

#if LMKIT_HAS_AMX_PATH
// GCC 12's AVX-512 unpack intrinsics pass a self-initialised `_mm512_undefined_epi32()`, which it
// then reports as uninitialised once inlined here (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace amx_detail {

constexpr std::size_t block = 32;  // C block edge: 2 x 2 tiles of 16 x 16
constexpr std::size_t tile = 16;

inline std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

/// The tile configuration: palette 1, every tile 16 rows of 64 bytes.
struct alignas(64) tile_config {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};

#define LMKIT_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))
// Packing, the dot-product kernel and C's stores use no tile instruction: they carry this subset,
// so that they run (and inline into either kernel) on CPUs without AMX.
#define LMKIT_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

/// XCR0: the register states the OS saves on a context switch (OSXSAVE checked first).
inline std::uint64_t os_saved_states() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1u)) return 0;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (std::uint64_t{hi} << 32) | lo;
}

/// Whether the CPU has AVX-512 (F, BW) with BF16 and the OS saves the vector state.
inline bool probe_bf16_dot() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512f = (b >> 16) & 1u, avx512bw = (b >> 30) & 1u;
  if (!avx512f || !avx512bw) return false;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1u)) return false;  // AVX512-BF16
  const std::uint64_t needed = (1u << 1) | (1u << 2) | (7u << 5);                  // SSE, AVX, AVX-512
  return (os_saved_states() & needed) == needed;
}

/// Asks, once per process, whether tiles may be used: what probe_bf16_dot asks, then CPUID for
/// AMX-TILE and AMX-BF16, XCR0 for the tile state, then Linux's arch_prctl for the permission (the
/// kernel leaves the 8 KiB tile state off until a process asks).
inline bool probe() {
  if (!probe_bf16_dot()) return false;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx_tile = (d >> 24) & 1u, amx_bf16 = (d >> 22) & 1u;
  if (!amx_tile || !amx_bf16) return false;
  const std::uint64_t tile_states = 3u << 17;  // tile configuration and tile data
  if ((os_saved_states() & tile_states) != tile_states) return false;
  constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}

/// The mask of a vector's first `count` lanes (all 16 from 16 on).
inline __mmask16 first_lanes(std::size_t count) {
  return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1u);
}

/// Transposes a 16 x 16 block of 32-bit elements held in 16 registers, in place.
LMKIT_BF16_TARGET inline void transpose_16x16(__m512i (&r)[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // Each 128-bit lane L of u[4i + j] now holds column 4L + j of rows 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44), x1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xee);
    const __m512i y0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44), y1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xee);
    r[j] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
    r[8 + j] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
  }
}

/// Where the packed operands keep one tile: every tile (16 rows of 64 bytes) is 1 KiB of its own,
/// and a row of tiles along k is contiguous. A tile loaded from rows k_pad or n_pad apart would
/// touch 16 lines a multiple of 1 KiB apart, which share a few of L1's sets and evict each other.
/// A: rows r .. r+15, k from c; B: pair rows p .. p+15 (k from 2p), columns j .. j+15.
inline std::size_t a_tile(std::size_t r, std::size_t c, std::size_t k_pad) { return (r / tile * (k_pad / 32) + c / 32) * 512; }
inline std::size_t b_tile(std::size_t p, std::size_t j, std::size_t k_pad) { return (j / tile * (k_pad / 32) + p / tile) * 512; }

/// Rows [r0, r1) of A (m x k as the product sees it; rows past m are zeros) into `packed`, tiles of
/// 16 x 32 bf16, row r at tile row (r - base) / 16. r0, r1 and base are multiples of 16.
LMKIT_BF16_TARGET inline void pack_a(const matrix_operand& a, std::size_t m, std::size_t k, std::size_t k_pad,
                                    std::uint16_t* packed, std::size_t r0, std::size_t r1, std::size_t base) {
  const float* src = static_cast<const float*>(a.data);
  if (!a.transposed) {
    for (std::size_t r = r0; r < r1; ++r) {
      const float* row = src + std::min(r, m - 1) * a.stride;  // rows past m are zeros
      for (std::size_t c = 0; c < k_pad; c += 32) {
        std::uint16_t* dst = packed + a_tile(r - base, c, k_pad) + r % tile * 32;
        const std::size_t left = r < m && c < k ? k - c : 0;
        const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(left), row + c);
        const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(left > 16 ? left - 16 : 0), row + c + 16);
        _mm512_store_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      }
    }
    return;
  }
  // Stored as A^T [k x m]: element (r, c) at src[c * stride + r]. Per band of 16 rows (r0 and r1
  // are multiples of 16) and 32 k: two 16 x 16 register transposes, then the conversion.
  for (std::size_t band = r0; band < r1; band += tile) {
    const __mmask16 valid = first_lanes(band < m ? m - band : 0);
    for (std::size_t c = 0; c < k_pad; c += 32) {
      __m512i lo[16], hi[16];
      for (std::size_t i = 0; i < tile; ++i) {
        const bool in_lo = c + i < k, in_hi = c + tile + i < k;
        lo[i] = _mm512_castps_si512(in_lo ? _mm512_maskz_loadu_ps(valid, src + (c + i) * a.stride + band) : _mm512_setzero_ps());
        hi[i] = _mm512_castps_si512(in_hi ? _mm512_maskz_loadu_ps(valid, src + (c + tile + i) * a.stride + band)
                                          : _mm512_setzero_ps());
      }
      transpose_16x16(lo);
      transpose_16x16(hi);
      for (std::size_t i = 0; i < tile; ++i)
        _mm512_store_si512(packed + a_tile(band - base, c, k_pad) + i * 32,
                            (__m512i)_mm512_cvtne2ps_pbh(_mm512_castsi512_ps(hi[i]), _mm512_castsi512_ps(lo[i])));
    }
  }
}

/// Pair rows [p0, p1) and columns [c0, c1) of B (k x n as the product sees it; columns past n are
/// zeros) into `packed`, tiles of 16 pair rows x 16 columns x 2, column j at tile column
/// (j - c0) / 16. c0 and c1 are multiples of 16, and so are p0 and p1 when B is transposed.
LMKIT_BF16_TARGET inline void pack_b(const matrix_operand& b, std::size_t k, std::size_t n, std::size_t k_pad,
                                    std::uint16_t* packed, std::size_t p0, std::size_t p1, std::size_t c0,
                                    std::size_t c1) {
  const float* src = static_cast<const float*>(b.data);
  if (b.transposed) {
    // Stored as B^T [n x k]: a pair (B[2p][col], B[2p+1][col]) is adjacent in stored row col, so
    // 16 stored rows of 32 k, converted, are 16 rows of 16 pairs; one 32-bit transpose makes them
    // 16 packed rows of 16 columns. p0 and p1 are multiples of 16.
    for (std::size_t p = p0; p < p1; p += tile) {
      const std::size_t k0 = 2 * p, left = k0 < k ? k - k0 : 0;
      const __mmask16 mask_lo = first_lanes(left), mask_hi = first_lanes(left > 16 ? left - 16 : 0);
      for (std::size_t c = c0; c < c1; c += tile) {
        __m512i rows[16];
        for (std::size_t j = 0; j < tile; ++j) {
          if (c + j >= n) {
            rows[j] = _mm512_setzero_si512();
            continue;
          }
          const float* row = src + (c + j) * b.stride + k0;
          rows[j] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mask_hi, row + 16), _mm512_maskz_loadu_ps(mask_lo, row));
        }
        transpose_16x16(rows);
        for (std::size_t i = 0; i < tile; ++i) _mm512_store_si512(packed + b_tile(p, c - c0, k_pad) + i * 32, rows[i]);
      }
    }
    return;
  }
  // cvtne2ps_pbh gives the 16 values of the even k then the 16 of the odd k; interleave them.
  const __m512i interleave = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005,
                                               0x00160006, 0x00170007, 0x00180008, 0x00190009, 0x001a000a, 0x001b000b,
                                               0x001c000c, 0x001d000d, 0x001e000e, 0x001f000f);
  for (std::size_t p = p0; p < p1; ++p) {
    const std::size_t k0 = 2 * p, k1 = 2 * p + 1;
    for (std::size_t c = c0; c < c1; c += tile) {
      const std::size_t left = c < n ? n - c : 0;
      const __m512 even = _mm512_maskz_loadu_ps(k0 < k ? first_lanes(left) : 0, src + k0 * b.stride + c);
      const __m512 odd = _mm512_maskz_loadu_ps(k1 < k ? first_lanes(left) : 0, src + k1 * b.stride + c);
      const __m512i pairs = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
      _mm512_store_si512(packed + b_tile(p, c - c0, k_pad) + p % tile * 32, pairs);
    }
  }
}

// Cache blocking, as in GotoBLAS. The smaller operand is packed once and shared; tasks split the
// larger side, each packing its own share: a band of `band_rows` rows of A, or a group of
// `group_cols` columns of B (so the largest product, the tied head's 50257-wide one, packs 256 KiB
// per thread, not 100 MiB). Along k a task goes in steps of `depth`, and for each step it sweeps
// its columns 32 at a time, holding that slice of B (32 columns x depth, 16 KiB) in L1 while the
// rows of A stream from L2. A C block gathers one depth step's sum, then is added to C (the first
// step writes it, unless the problem accumulates): the order of the sums depends on k alone,
// never on the tasks.
constexpr std::size_t band_rows = 128, group_cols = 256, depth = 256;

// Both packs, the shared operand and a task's share of the other, hold the whole of k. A product
// with a long k (the tied head's dx, k = vocab: 77 MiB of GPT-2 small's weight in bf16) goes in
// slices of k instead, so that neither pack exceeds this size; each slice's sum is added to C. The
// slices are whole depth steps, so every element's sum keeps its order over k and the bits are
// those of one piece.
constexpr std::size_t pack_bytes = std::size_t{8} << 20;

/// The operand's view from column (A) or row (B) `k0` on along k.
inline matrix_operand from_k(matrix_operand x, std::size_t k0, bool k_is_column) {
  const std::size_t offset = k_is_column != x.transposed ? k0 : k0 * x.stride;
  x.data = static_cast<const float*>(x.data) + offset;
  return x;
}

/// One 32 x 32 block of C, rows `row` and columns `col` (both inside the padding), over k in
/// [k0, k1): the four tiles' sum, stored to `out` (32 x 32, in L1).
LMKIT_AMX_TARGET inline void block_sum(const std::uint16_t* a, const std::uint16_t* b, std::size_t k_pad, std::size_t row,
                                       std::size_t col, std::size_t k0, std::size_t k1, float* out) {
  constexpr long stride = 64;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const std::uint16_t* a_top = a + a_tile(row, k0, k_pad);
  const std::uint16_t* a_bottom = a + a_tile(row + tile, k0, k_pad);
  const std::uint16_t* b_left = b + b_tile(k0 / 2, col, k_pad);
  const std::uint16_t* b_right = b + b_tile(k0 / 2, col + tile, k_pad);
  for (std::size_t kk = k0, i = 0; kk < k1; kk += 32, i += 512) {
    _tile_loadd(4, a_top + i, stride);
    _tile_loadd(5, a_bottom + i, stride);
    _tile_loadd(6, b_left + i, stride);
    _tile_loadd(7, b_right + i, stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  // Through a buffer in L1, then to C with vector moves: a tile stored straight into C's rows (a
  // cache line each, often not in L1) holds its register until the lines arrive, and the next
  // block's products wait for that register.
  constexpr long out_stride = block * sizeof(float);
  _tile_stored(0, out, out_stride);
  _tile_stored(1, out + tile, out_stride);
  _tile_stored(2, out + tile * block, out_stride);
  _tile_stored(3, out + tile * block + tile, out_stride);
}

/// C's block at (row, col) = `out` (+ C when `add`), within C's m x n.
LMKIT_BF16_TARGET inline void store_block(const gemm_problem& g, std::size_t row, std::size_t col, const float* out, bool add) {
  const std::size_t rows = std::min(block, g.m - row), cols = std::min(block, g.n - col);
  const __mmask16 left = first_lanes(cols), right = first_lanes(cols > tile ? cols - tile : 0);
  float* c = g.c + row * g.ldc + col;
  for (std::size_t r = 0; r < rows; ++r, c += g.ldc) {
    __m512 lo = _mm512_load_ps(out + r * block), hi = _mm512_load_ps(out + r * block + tile);
    if (add) {
      lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(left, c));
      hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(right, c + tile));
    }
    _mm512_mask_storeu_ps(c, left, lo);
    _mm512_mask_storeu_ps(c + tile, right, hi);
  }
}

/// block_sum without tiles: the same 32 x 32 block of C from the same packed operands, with
/// VDPBF16PS. Eight rows at a time (16 accumulators): for each pair row of B, its two 16-column
/// vectors are multiplied by each row's pair of A, broadcast. Each element's sum runs over k in a
/// fixed order, as on the tiles (another order than theirs: results differ in the last bits).
LMKIT_BF16_TARGET inline void block_sum_dot(const std::uint16_t* a, const std::uint16_t* b, std::size_t k_pad,
                                            std::size_t row, std::size_t col, std::size_t k0, std::size_t k1, float* out) {
  constexpr std::size_t rows = 8;
  const std::uint16_t* b_left = b + b_tile(k0 / 2, col, k_pad);
  const std::uint16_t* b_right = b + b_tile(k0 / 2, col + tile, k_pad);
  for (std::size_t r0 = 0; r0 < block; r0 += rows) {
    __m512 left[rows], right[rows];
    for (std::size_t i = 0; i < rows; ++i) left[i] = right[i] = _mm512_setzero_ps();
    for (std::size_t kk = k0, t = 0; kk < k1; kk += 32, t += 512) {
      // Rows row + r0 .. + 7 lie in one tile of A (row is a multiple of 32, r0 of 8).
      const std::uint16_t* a_rows = a + a_tile(row + r0, kk, k_pad) + r0 % tile * 32;
      for (std::size_t p = 0; p < tile; ++p) {
        const __m512bh bl = (__m512bh)_mm512_load_si512(b_left + t + p * 32);
        const __m512bh br = (__m512bh)_mm512_load_si512(b_right + t + p * 32);
#pragma GCC unroll 8
        for (std::size_t i = 0; i < rows; ++i) {
          std::uint32_t pair;  // A[r][2p] (low half) and A[r][2p + 1], as B's pairs hold them
          std::memcpy(&pair, a_rows + i * 32 + 2 * p, sizeof pair);
          const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
          left[i] = _mm512_dpbf16_ps(left[i], av, bl);
          right[i] = _mm512_dpbf16_ps(right[i], av, br);
        }
      }
    }
    for (std::size_t i = 0; i < rows; ++i) {
      _mm512_store_ps(out + (r0 + i) * block, left[i]);
      _mm512_store_ps(out + (r0 + i) * block + tile, right[i]);
    }
  }
}

/// C's rows [row0, row1) x columns [col0, col1) (row0, col0 multiples of 32) from packed A whose
/// tile rows start at row `a_base` and packed B whose tile columns start at column `b_base`, on
/// the tiles or (`tiles` false) with block_sum_dot, which runs no tile instruction.
LMKIT_AMX_TARGET inline void multiply_region(const gemm_problem& g, const std::uint16_t* a, std::size_t a_base,
                                             const std::uint16_t* b, std::size_t b_base, std::size_t k_pad,
                                             std::size_t row0, std::size_t row1, std::size_t col0, std::size_t col1,
                                             bool tiles) {
  if (tiles) {
    tile_config config;
    for (int t = 0; t < 8; ++t) {
      config.rows[t] = tile;
      config.bytes_per_row[t] = 64;
    }
    _tile_loadconfig(&config);
  }
  alignas(64) float out[block * block];
  for (std::size_t k0 = 0; k0 < k_pad; k0 += depth) {
    const std::size_t k1 = std::min(k0 + depth, k_pad);
    for (std::size_t col = col0; col < col1; col += block)
      for (std::size_t row = row0; row < row1; row += block) {
        if (tiles) block_sum(a, b, k_pad, row - a_base, col - b_base, k0, k1, out);
        else block_sum_dot(a, b, k_pad, row - a_base, col - b_base, k0, k1, out);
        store_block(g, row, col, out, k0 > 0 || g.accumulate);
      }
  }
  if (tiles) _tile_release();
}

#undef LMKIT_AMX_TARGET
#undef LMKIT_BF16_TARGET

/// Packing space, kept by each thread between products (it grows to the largest seen): the shared
/// operand of the products this thread calls, and its share of the other in the tasks it runs.
struct workspace {
  aligned_buffer<std::uint16_t> shared, share;
};

inline std::uint16_t* room(aligned_buffer<std::uint16_t>& buffer, std::size_t size) {
  if (buffer.size() < size) buffer = aligned_buffer<std::uint16_t>(size, uninitialized);
  return buffer.data();
}

inline workspace& thread_workspace() {
  thread_local workspace w;
  return w;
}

}  // namespace amx_detail
#pragma GCC diagnostic pop

/// Whether this CPU and OS let lmkit multiply on AMX tiles (asked once per process).
inline bool amx_bf16_usable() {
  static const bool usable = amx_detail::probe();
  return usable;
}

/// Whether this CPU has AVX512-BF16's dot products (asked once per process).
inline bool bf16_dot_usable() {
  static const bool usable = amx_detail::probe_bf16_dot();
  return usable;
}

namespace amx_detail {
/// The packing and cache blocking of both bf16 kernels; `tiles` picks AMX or VDPBF16PS.
inline void gemm_bf16_packed(const gemm_problem& g, const thread_pool& pool, bool tiles) {
  if (g.m == 0 || g.n == 0) return;
  const std::size_t m_pad = round_up(g.m, block), n_pad = round_up(g.n, block);
  const std::size_t widest_pack = g.m >= g.n ? std::max(n_pad, band_rows) : std::max(m_pad, group_cols);
  const std::size_t slice = std::max(depth, pack_bytes / sizeof(std::uint16_t) / widest_pack / depth * depth);
  if (g.k > slice) {
    for (std::size_t k0 = 0; k0 < g.k; k0 += slice) {
      gemm_problem part = g;
      part.k = std::min(slice, g.k - k0);
      part.a = from_k(g.a, k0, true);
      part.b = from_k(g.b, k0, false);
      part.accumulate = g.accumulate || k0 > 0;
      gemm_bf16_packed(part, pool, tiles);
    }
    return;
  }
  const std::size_t k_pad = round_up(std::max<std::size_t>(g.k, 1), 32);
  std::uint16_t* shared = nullptr;
  if (g.m >= g.n) {  // bands of rows; B packed once
    shared = room(thread_workspace().shared, k_pad * n_pad);
    pool.for_each_chunk(k_pad / 2, std::max<std::size_t>(tile, 16384 / n_pad / tile * tile), [&](std::size_t p0, std::size_t p1) {
      pack_b(g.b, g.k, g.n, k_pad, shared, p0, p1, 0, n_pad);
    });
    pool.for_each_index((g.m + band_rows - 1) / band_rows, [&](std::size_t band) {
      const std::size_t row0 = band * band_rows, row1 = std::min(row0 + band_rows, g.m), rows = round_up(row1 - row0, block);
      std::uint16_t* share = room(thread_workspace().share, rows * k_pad);
      pack_a(g.a, g.m, g.k, k_pad, share, row0, row0 + rows, row0);
      multiply_region(g, share, row0, shared, 0, k_pad, row0, row1, 0, g.n, tiles);
    });
    return;
  }
  // groups of columns; A packed once
  shared = room(thread_workspace().shared, m_pad * k_pad);
  pool.for_each_chunk(m_pad, std::max<std::size_t>(tile, 32768 / k_pad / tile * tile),
                      [&](std::size_t r0, std::size_t r1) { pack_a(g.a, g.m, g.k, k_pad, shared, r0, r1, 0); });
  pool.for_each_index((g.n + group_cols - 1) / group_cols, [&](std::size_t group) {
    const std::size_t col0 = group * group_cols, col1 = std::min(col0 + group_cols, g.n), cols = round_up(col1 - col0, block);
    std::uint16_t* share = room(thread_workspace().share, k_pad * cols);
    pack_b(g.b, g.k, g.n, k_pad, share, 0, k_pad / 2, col0, col0 + cols);
    multiply_region(g, shared, 0, share, col0, k_pad, 0, g.m, col0, col1, tiles);
  });
}

/// The elements of B [k x n] packed whole (prepacked_matrix with bf16 products).
inline std::size_t whole_b_size(std::size_t k, std::size_t n) {
  return round_up(std::max<std::size_t>(k, 1), 32) * round_up(n, block);
}

/// B [k x n] packed whole, every pair row and every column, into `packed` (whole_b_size elements).
inline void pack_b_whole(const matrix_operand& b, std::size_t k, std::size_t n, std::uint16_t* packed) {
  const std::size_t k_pad = round_up(std::max<std::size_t>(k, 1), 32);
  pack_b(b, k, n, k_pad, packed, 0, k_pad / 2, 0, round_up(n, block));
}

/// C (+)= bf16(A) * B for B packed whole (pack_b_whole; g.b is not read): A's rows are packed,
/// then groups of C's columns run in parallel, at least two per thread. Each C block is summed by
/// one task in the order of k alone, so the result does not depend on the thread count.
inline void gemm_bf16_prepacked(const gemm_problem& g, const std::uint16_t* packed_b, const thread_pool& pool, bool tiles) {
  if (g.m == 0 || g.n == 0) return;
  const std::size_t k_pad = round_up(std::max<std::size_t>(g.k, 1), 32), m_pad = round_up(g.m, block);
  std::uint16_t* a = room(thread_workspace().shared, m_pad * k_pad);
  pool.for_each_chunk(m_pad, std::max<std::size_t>(tile, 32768 / k_pad / tile * tile),
                      [&](std::size_t r0, std::size_t r1) { pack_a(g.a, g.m, g.k, k_pad, a, r0, r1, 0); });
  const std::size_t tasks = 2 * static_cast<std::size_t>(std::max(1, pool.threads()));
  const std::size_t cols = std::clamp(round_up((g.n + tasks - 1) / tasks, block), block, group_cols);
  pool.for_each_index((g.n + cols - 1) / cols, [&](std::size_t group) {
    const std::size_t col0 = group * cols, col1 = std::min(col0 + cols, g.n);
    multiply_region(g, a, 0, packed_b, 0, k_pad, 0, g.m, col0, col1, tiles);
  });
}
}  // namespace amx_detail

/// C (+)= bf16(A) * bf16(B) on AMX tiles, f32 operands only. The caller checks amx_bf16_usable().
inline void gemm_bf16_amx(const gemm_problem& g, const thread_pool& pool) { amx_detail::gemm_bf16_packed(g, pool, true); }

/// C (+)= bf16(A) * bf16(B) with AVX512-BF16 dot products, f32 operands only. The caller checks
/// bf16_dot_usable().
inline void gemm_bf16_dot(const gemm_problem& g, const thread_pool& pool) { amx_detail::gemm_bf16_packed(g, pool, false); }

#else
inline bool amx_bf16_usable() { return false; }
inline bool bf16_dot_usable() { return false; }
inline void gemm_bf16_amx(const gemm_problem&, const thread_pool&) {}
inline void gemm_bf16_dot(const gemm_problem&, const thread_pool&) {}
#endif

}  // namespace lmkit::kernels
