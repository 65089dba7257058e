// Quantised weights: ggml's Q8_0 and Q4_0 block formats (32 weights, one f16 scale per block).
// Quantisers that are ggml's reference definitions bit for bit, dequantisers, and the product
// y = x * W^T that llama.cpp computes for these weight types: each row of x is quantised to Q8_0,
// then per block an integer dot product, scaled by d_w * d_x and summed in f32.
//
// Integer dot products are four-byte steps "unsigned bytes times signed bytes, summed into each
// 32-bit lane" (VNNI's vpdpbusd). The weights become the unsigned operand: a Q8_0 weight w as
// w + 128 (w ^ 0x80, exact for every int8), a Q4_0 nibble as it is stored (0..15); the offset times
// the sum of the activations (128 or 8 times sum x) is subtracted in the integer accumulator, whose
// start value the activation quantiser precomputes. So every block's integer is exact.
//
// Two shapes of work:
// - few rows of x (decoding): W is read in place, four rows at a time, one 256-bit step per block
//   and row; memory-bound, so the loop is kept short and the next rows are prefetched;
// - a prompt (8 rows or more): x is quantised into panels of 16 rows interleaved four bytes at a
//   time, so that one 512-bit vector holds the same four columns of 16 rows; a broadcast of four
//   bytes of one weight row then feeds 16 rows' products per instruction, with W still read in
//   place. A tile is 2 panels x 4 weight rows (8 vectors of int32 plus 8 of f32 in registers).
// On AVX-512 with VNNI the step is one vpdpbusd; on AVX-512 without it, two vpmaddwd on widened
// bytes (exact, where vpmaddubsw would saturate); other targets run a plain loop per block.
// Per-target code, re-included once per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_QUANT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_QUANT_INL_HPP_
#undef LMKIT_KERNELS_QUANT_INL_HPP_
#else
#define LMKIT_KERNELS_QUANT_INL_HPP_
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/core/weight_matrix.hpp"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

// Once, outside the per-target namespaces.
#ifndef LMKIT_KERNELS_QUANT_COMMON_
#define LMKIT_KERNELS_QUANT_COMMON_
namespace lmkit::kernels::detail {
/// Whether the AVX-512 kernels may use VNNI's vpdpbusd where the CPU has it. Tests clear it to run
/// the AVX-512BW path on a machine that has both; nothing else should need to.
inline std::atomic<bool> quant_vnni_allowed{true};
}  // namespace lmkit::kernels::detail
#endif

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace quant_detail {

constexpr std::size_t kBlock = 32;
// Decoding path: x rows and W rows per pass over a W row group.
constexpr std::size_t kDirectWeightRows = 4;
// Prompt path: x rows per panel, panels and W rows per tile, and the panel's bytes per block:
// 8 steps of 16 rows x 4 bytes, then 16 int32 start values and 16 f32 scales.
constexpr std::size_t kPanelRows = 16;
constexpr std::size_t kPanelBlockBytes = 8 * 64 + 64 + 64;
constexpr std::size_t kTileWeightRows = 4;

/// Keeps the compiler from contracting a product and a following sum into one FMA (GCC contracts
/// by default wherever the target has FMA): ggml's reference rounds the product first.
HWY_INLINE float unfused(float v) {
#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
  asm("" : "+x"(v));
#else
  volatile float kept = v;
  v = kept;
#endif
  return v;
}

HWY_INLINE float load_f16(const unsigned char* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16::from_bits(bits).to_float();
}
HWY_INLINE void store_f16(unsigned char* p, float v) {
  const std::uint16_t bits = f16::from_float(v).bits;
  std::memcpy(p, &bits, 2);
}

/// One block of 32 floats to Q8_0 as ggml's quantize_row_q8_0_ref does: amax, d = amax / 127,
/// id = d ? 1 / d : 0, q = roundf(x * id) (halves away from zero, as roundf; ggml's AVX activation
/// path rounds halves to even instead: we use roundf for weights and activations alike, so that
/// one definition serves both). Writes q, returns d rounded to f16 and widened; *sum = sum of q.
template <class DF>
HWY_INLINE float quantize_block_q8(DF df, const float* HWY_RESTRICT x, std::int8_t* HWY_RESTRICT q,
                                   std::int32_t* sum) {
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::int8_t, decltype(di)> d8;
  const std::size_t n = hn::Lanes(df);
  auto amax = hn::Zero(df), probe = hn::Zero(df);
  for (std::size_t i = 0; i < kBlock; i += n) {
    const auto v = hn::LoadU(df, x + i);
    amax = hn::Max(amax, hn::Abs(v));
    probe = hn::Add(probe, hn::Mul(v, hn::Zero(df)));  // NaN exactly when some x is inf or NaN
  }
  const float max = hn::GetLane(hn::MaxOfLanes(df, amax));
  if (std::isnan(hn::GetLane(hn::SumOfLanes(df, probe)))) {
    // An inf or NaN in the block (a model gone numerically wrong, a damaged file): converting it
    // to an integer is undefined. The block becomes zeros with a NaN scale, so the product is NaN
    // (visible) rather than garbage. (ggml's definition is silent here; finite blocks are unchanged.)
    std::fill(q, q + kBlock, std::int8_t{0});
    *sum = 0;
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float d = max / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const auto vid = hn::Set(df, id), half = hn::Set(df, 0.5f), one = hn::Set(df, 1.0f);
  auto total = hn::Zero(di);
  for (std::size_t i = 0; i < kBlock; i += n) {
    const auto v = hn::Mul(hn::LoadU(df, x + i), vid);
    // roundf: truncate, then step away from zero where the dropped part is at least one half
    // (v - trunc(v) is exact).
    const auto t = hn::Trunc(v);
    const auto r = hn::IfThenElse(hn::Abs(hn::Sub(v, t)) >= half, hn::Add(t, hn::CopySign(one, v)), t);
    const auto qi = hn::ConvertTo(di, r);
    total = hn::Add(total, qi);
    hn::StoreU(hn::DemoteTo(d8, qi), d8, q + i);
  }
  *sum = hn::GetLane(hn::SumOfLanes(di, total));
  return f16::from_float(d).to_float();
}

/// Bytes of the quantised activations in the decoding layout: int8 rows, then per row and block
/// eight int32 start values (one per lane of a 256-bit step), then per row and block the f32 scale.
struct direct_layout {
  direct_layout(std::size_t m, std::size_t cols) : blocks(cols / kBlock) {
    qs_bytes = (m * cols + 63) / 64 * 64;
    start_bytes = m * blocks * 8 * sizeof(std::int32_t);
    scale_bytes = m * blocks * sizeof(float);
  }
  std::size_t total() const { return qs_bytes + start_bytes + scale_bytes; }
  std::size_t blocks, qs_bytes, start_bytes, scale_bytes;
};

/// Workspace that lives as long as the calling thread: reused, not re-faulted, on every call.
inline unsigned char* workspace(std::size_t bytes) {
  thread_local aligned_buffer<unsigned char> buffer;
  if (buffer.size() < bytes) buffer = aligned_buffer<unsigned char>(bytes, uninitialized);
  return buffer.data();
}

inline std::size_t block_bytes(weight_type t) { return t == weight_type::q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0); }

/// The offset that makes the weights unsigned: w + 128 for Q8_0, the stored nibble (w + 8) for Q4_0.
inline std::int32_t weight_offset(weight_type t) { return t == weight_type::q8_0 ? 128 : 8; }

// ---- every target: a plain loop per block -------------------------------------------------------

/// The 32 signed integers of a stored block.
HWY_INLINE void decode_block(weight_type t, const unsigned char* p, std::int8_t* q) {
  if (t == weight_type::q8_0) {
    std::memcpy(q, p + 2, kBlock);
  } else {
    for (std::size_t i = 0; i < 16; ++i) {
      q[i] = static_cast<std::int8_t>((p[2 + i] & 15) - 8);
      q[i + 16] = static_cast<std::int8_t>((p[2 + i] >> 4) - 8);
    }
  }
}

/// y = x W^T with x quantised row by row (int8 rows, f32 scales) and W decoded a row at a time.
inline void matmul_generic(const float* x, std::size_t m, std::size_t ldx, weight_type type, const unsigned char* w,
                           std::size_t rows, std::size_t cols, float* y, std::size_t ldy, const thread_pool& pool) {
  const hn::ScalableTag<float> df;
  const std::size_t blocks = cols / kBlock, stride = blocks * block_bytes(type);
  const std::size_t qs_bytes = (m * cols + 63) / 64 * 64;
  unsigned char* ws = workspace(qs_bytes + m * blocks * sizeof(float));
  auto* xq = reinterpret_cast<std::int8_t*>(ws);
  auto* xd = reinterpret_cast<float*>(ws + qs_bytes);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t b = 0; b < blocks; ++b) {
      std::int32_t sum;
      xd[i * blocks + b] = quantize_block_q8(df, x + i * ldx + b * kBlock, xq + i * cols + b * kBlock, &sum);
    }
  const std::size_t grain = std::max<std::size_t>(1, 32768 / std::max<std::size_t>(stride * std::max<std::size_t>(m, 1), 1));
  pool.for_each_chunk(rows, grain, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    thread_local aligned_buffer<std::int8_t> decoded;
    thread_local aligned_buffer<float> scales;
    if (decoded.size() < cols) decoded = aligned_buffer<std::int8_t>(cols, uninitialized);
    if (scales.size() < blocks) scales = aligned_buffer<float>(blocks, uninitialized);
    for (std::size_t r = begin; r < end; ++r) {
      const unsigned char* row = w + r * stride;
      for (std::size_t b = 0; b < blocks; ++b) {
        decode_block(type, row + b * block_bytes(type), decoded.data() + b * kBlock);
        scales[b] = load_f16(row + b * block_bytes(type));
      }
      for (std::size_t i = 0; i < m; ++i) {
        float sum = 0.0f;
        for (std::size_t b = 0; b < blocks; ++b) {
          const std::int8_t* a = decoded.data() + b * kBlock;
          const std::int8_t* v = xq + i * cols + b * kBlock;
          std::int32_t dot = 0;
          for (std::size_t k = 0; k < kBlock; ++k) dot += std::int32_t{a[k]} * std::int32_t{v[k]};
          sum += scales[b] * xd[i * blocks + b] * static_cast<float>(dot);
        }
        y[i * ldy + r] = sum;
      }
    }
  });
}

// ---- AVX-512 -------------------------------------------------------------------------------------
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

// acc + per 32-bit lane the sum of four products (unsigned bytes of a) x (signed bytes of b).
// Highway's AVX3 target is compiled without VNNI (AVX3_DL, which has it, needs HWY_WANT_AVX3_DL),
// so vpdpbusd is written in assembly and chosen at run time (cpu_has_vnni).
struct dot_vnni {
  static HWY_INLINE __m512i dot(__m512i acc, __m512i a, __m512i b) {
#if HWY_TARGET == HWY_AVX3_DL
    return _mm512_dpbusd_epi32(acc, a, b);
#else
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
#endif
  }
  static HWY_INLINE __m256i dot(__m256i acc, __m256i a, __m256i b) {
    asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
  }
};
// The same sum from AVX-512BW: bytes widened to 16 bits (even and odd apart), two vpmaddwd.
struct dot_bw {
  static HWY_INLINE __m512i dot(__m512i acc, __m512i a, __m512i b) {
    const __m512i low = _mm512_set1_epi16(0x00FF);
    const __m512i a_even = _mm512_and_si512(a, low), a_odd = _mm512_srli_epi16(a, 8);
    const __m512i b_even = _mm512_srai_epi16(_mm512_slli_epi16(b, 8), 8), b_odd = _mm512_srai_epi16(b, 8);
    return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(a_even, b_even), _mm512_madd_epi16(a_odd, b_odd)));
  }
  static HWY_INLINE __m256i dot(__m256i acc, __m256i a, __m256i b) {
    const __m256i low = _mm256_set1_epi16(0x00FF);
    const __m256i a_even = _mm256_and_si256(a, low), a_odd = _mm256_srli_epi16(a, 8);
    const __m256i b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8), b_odd = _mm256_srai_epi16(b, 8);
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(a_even, b_even), _mm256_madd_epi16(a_odd, b_odd)));
  }
};

inline bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has && ::lmkit::kernels::detail::quant_vnni_allowed.load(std::memory_order_relaxed);
}

HWY_INLINE float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

HWY_INLINE float f16_scale(const unsigned char* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

/// A stored block as the unsigned 32-byte operand, elements in order: two ALU operations each.
template <weight_type T>
HWY_INLINE __m256i weight_operand(const unsigned char* block) {
  if constexpr (T == weight_type::q8_0) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2)), _mm256_set1_epi8(char(0x80)));
  } else {
    // The 16 bytes in both halves (a load), the high half shifted by a nibble, then masked.
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)));
    const __m256i shifts = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    return _mm256_and_si256(_mm256_srlv_epi16(both, shifts), _mm256_set1_epi8(0x0F));
  }
}

/// Decoding: y[x0 + i][r] for i < XR and r in [begin, end), W read in place four rows at a time.
/// Per block and row: two operations for the weight operand, vpdpbusd, a conversion and an FMA;
/// the scale d_w d_x is a scalar product broadcast. (Gathering 16 scales at a time and converting
/// them in a vector was slower here: gathers are slow where microcode mitigates Gather Data
/// Sampling, and staging the 16-bit words through memory costs as much as it saves.)
template <class Dot, weight_type T, std::size_t XR>
HWY_INLINE void direct_rows(const unsigned char* w, std::size_t stride, std::size_t blocks, std::size_t begin,
                            std::size_t end, std::size_t rows, const std::int8_t* xq, const std::int32_t* starts,
                            const float* xd, std::size_t cols, float* y, std::size_t ldy) {
  constexpr std::size_t WR = kDirectWeightRows;
  constexpr std::size_t bytes = T == weight_type::q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
  for (std::size_t r = begin; r < end; r += WR) {
    // A last group of fewer rows repeats its last row (the repeats are not stored).
    const unsigned char* row[WR];
    for (std::size_t j = 0; j < WR; ++j) row[j] = w + std::min(r + j, end - 1) * stride;
    // Rows about 3 KiB ahead (the next group for Q8_0, the one after for Q4_0) are fetched while
    // this group is computed, a slice per block: the hardware prefetchers alone leave decode at
    // about half the bandwidth.
    const std::size_t ahead = std::max<std::size_t>(1, (3072 + WR * stride - 1) / (WR * stride)) * WR;
    const unsigned char* next = w + std::min(r + ahead, rows - 1) * stride;
    const std::size_t slice = (WR * stride + blocks - 1) / blocks;
    __m256 acc[WR][XR];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < WR; ++j)
#pragma GCC unroll 4
      for (std::size_t i = 0; i < XR; ++i) acc[j][i] = _mm256_setzero_ps();
    for (std::size_t b = 0; b < blocks; ++b) {
      hwy::Prefetch(next + b * slice);
      hwy::Prefetch(next + b * slice + 64);
      if (slice > 128) hwy::Prefetch(next + b * slice + 128);
      __m256i a[WR];
      float dw[WR];
#pragma GCC unroll 4
      for (std::size_t j = 0; j < WR; ++j) {
        a[j] = weight_operand<T>(row[j] + b * bytes);
        dw[j] = f16_scale(row[j] + b * bytes);
      }
#pragma GCC unroll 4
      for (std::size_t i = 0; i < XR; ++i) {
        const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + i * cols + b * kBlock));
        const __m256i start = _mm256_load_si256(reinterpret_cast<const __m256i*>(starts + (i * blocks + b) * 8));
        const float dx = xd[i * blocks + b];
#pragma GCC unroll 4
        for (std::size_t j = 0; j < WR; ++j)
          acc[j][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Dot::dot(start, a[j], xv)), _mm256_set1_ps(dw[j] * dx), acc[j][i]);
      }
    }
    // Sums of every accumulator first (fixed indices keep them in registers), then the rows that exist.
    float sums[WR][XR];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < WR; ++j)
#pragma GCC unroll 4
      for (std::size_t i = 0; i < XR; ++i) sums[j][i] = hsum(acc[j][i]);
    for (std::size_t j = 0; j < WR && r + j < end; ++j)
      for (std::size_t i = 0; i < XR; ++i) y[i * ldy + r + j] = sums[j][i];
  }
}

template <class Dot, weight_type T>
HWY_INLINE void direct_all(const float* x, std::size_t m, std::size_t ldx, const unsigned char* w, std::size_t rows,
                           std::size_t cols, float* y, std::size_t ldy, const thread_pool& pool) {
  const hn::ScalableTag<float> df;
  const direct_layout layout(m, cols);
  const std::size_t blocks = layout.blocks, stride = blocks * (T == weight_type::q8_0 ? 34 : 18);
  unsigned char* ws = workspace(layout.total());
  auto* xq = reinterpret_cast<std::int8_t*>(ws);
  auto* starts = reinterpret_cast<std::int32_t*>(ws + layout.qs_bytes);
  auto* xd = reinterpret_cast<float*>(ws + layout.qs_bytes + layout.start_bytes);
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  const __m256i minus_offset = _mm256_set1_epi32(-weight_offset(T));
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t b = 0; b < blocks; ++b) {
      std::int8_t* q = xq + i * cols + b * kBlock;
      std::int32_t sum;
      xd[i * blocks + b] = quantize_block_q8(df, x + i * ldx + b * kBlock, q, &sum);
      // Per 32-bit lane, -offset times the sum of its four activations (bytes summed in pairs, then pairs).
      const __m256i pairs = _mm256_maddubs_epi16(ones8, _mm256_load_si256(reinterpret_cast<const __m256i*>(q)));
      const __m256i quads = _mm256_madd_epi16(pairs, ones16);
      _mm256_store_si256(reinterpret_cast<__m256i*>(starts + (i * blocks + b) * 8), _mm256_mullo_epi32(quads, minus_offset));
    }
  // Fixed chunks of whole row groups, about 32 KiB of weights each: the same partition for any
  // thread count.
  const std::size_t grain = std::max<std::size_t>(1, 32768 / (stride * kDirectWeightRows)) * kDirectWeightRows;
  pool.for_each_chunk(rows, grain, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    std::size_t i = 0;
    for (; i + 4 <= m; i += 4)
      direct_rows<Dot, T, 4>(w, stride, blocks, begin, end, rows, xq + i * cols, starts + i * blocks * 8,
                             xd + i * blocks, cols, y + i * ldy, ldy);
    for (; i + 2 <= m; i += 2)
      direct_rows<Dot, T, 2>(w, stride, blocks, begin, end, rows, xq + i * cols, starts + i * blocks * 8,
                             xd + i * blocks, cols, y + i * ldy, ldy);
    for (; i < m; ++i)
      direct_rows<Dot, T, 1>(w, stride, blocks, begin, end, rows, xq + i * cols, starts + i * blocks * 8,
                             xd + i * blocks, cols, y + i * ldy, ldy);
  });
}

// Through Highway's wrapper, which silences GCC 12's false -Wmaybe-uninitialized on the intrinsic.
HWY_INLINE __m512 to_float(__m512i v) { return hn::ConvertTo(hn::Full512<float>(), hn::Vec512<std::int32_t>{v}).raw; }

HWY_INLINE __m512i broadcast_u32(const unsigned char* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

/// A tile of MR panels (16 x rows each) x 4 weight rows over the whole depth: out[i][j][lane] is
/// the product of x row 16 i + lane (of the tile) with weight row j.
template <class Dot, weight_type T, std::size_t MR>
HWY_INLINE void panel_tile(const unsigned char* const* row, std::size_t blocks, const unsigned char* panels,
                           std::size_t panel_stride, float* out) {
  constexpr std::size_t NR = kTileWeightRows;
  constexpr std::size_t bytes = T == weight_type::q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
  __m512 acc[MR][NR];
  for (std::size_t i = 0; i < MR; ++i)
    for (std::size_t j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (std::size_t b = 0; b < blocks; ++b) {
    const unsigned char* xb[MR];
    for (std::size_t i = 0; i < MR; ++i) xb[i] = panels + i * panel_stride + b * kPanelBlockBytes;
    __m512i iacc[MR][NR];
#pragma GCC unroll 2
    for (std::size_t i = 0; i < MR; ++i) {
      const __m512i start = _mm512_load_si512(xb[i] + 512);
#pragma GCC unroll 4
      for (std::size_t j = 0; j < NR; ++j) iacc[i][j] = start;
    }
    if constexpr (T == weight_type::q8_0) {
#pragma GCC unroll 8
      for (std::size_t s = 0; s < 8; ++s) {
        __m512i xv[MR];
#pragma GCC unroll 2
        for (std::size_t i = 0; i < MR; ++i) xv[i] = _mm512_load_si512(xb[i] + 64 * s);
#pragma GCC unroll 4
        for (std::size_t j = 0; j < NR; ++j) {
          const __m512i a = _mm512_xor_si512(broadcast_u32(row[j] + b * bytes + 2 + 4 * s), _mm512_set1_epi8(char(0x80)));
#pragma GCC unroll 2
          for (std::size_t i = 0; i < MR; ++i) iacc[i][j] = Dot::dot(iacc[i][j], a, xv[i]);
        }
      }
    } else {
      // Four bytes of a Q4_0 block hold elements 4s..4s+3 (low nibbles) and 16+4s.. (high nibbles).
#pragma GCC unroll 4
      for (std::size_t s = 0; s < 4; ++s) {
        __m512i lo_x[MR], hi_x[MR];
#pragma GCC unroll 2
        for (std::size_t i = 0; i < MR; ++i) {
          lo_x[i] = _mm512_load_si512(xb[i] + 64 * s);
          hi_x[i] = _mm512_load_si512(xb[i] + 64 * (s + 4));
        }
#pragma GCC unroll 4
        for (std::size_t j = 0; j < NR; ++j) {
          const __m512i raw = broadcast_u32(row[j] + b * bytes + 2 + 4 * s);
          const __m512i nibble = _mm512_set1_epi8(0x0F);
          const __m512i lo = _mm512_and_si512(raw, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), nibble);
#pragma GCC unroll 2
          for (std::size_t i = 0; i < MR; ++i) iacc[i][j] = Dot::dot(Dot::dot(iacc[i][j], lo, lo_x[i]), hi, hi_x[i]);
        }
      }
    }
    __m512 dw[NR];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < NR; ++j) dw[j] = _mm512_set1_ps(f16_scale(row[j] + b * bytes));
#pragma GCC unroll 2
    for (std::size_t i = 0; i < MR; ++i) {
      const __m512 dx = _mm512_load_ps(reinterpret_cast<const float*>(xb[i] + 576));
#pragma GCC unroll 4
      for (std::size_t j = 0; j < NR; ++j)
        acc[i][j] = _mm512_fmadd_ps(to_float(iacc[i][j]), _mm512_mul_ps(dx, dw[j]), acc[i][j]);
    }
  }
  for (std::size_t i = 0; i < MR; ++i)
    for (std::size_t j = 0; j < NR; ++j) _mm512_store_ps(out + (i * NR + j) * 16, acc[i][j]);
}

template <class Dot, weight_type T>
HWY_INLINE void panel_all(const float* x, std::size_t m, std::size_t ldx, const unsigned char* w, std::size_t rows,
                          std::size_t cols, float* y, std::size_t ldy, const thread_pool& pool) {
  const hn::ScalableTag<float> df;
  const std::size_t blocks = cols / kBlock, stride = blocks * (T == weight_type::q8_0 ? 34 : 18);
  const std::size_t panels = (m + kPanelRows - 1) / kPanelRows, panel_stride = blocks * kPanelBlockBytes;
  unsigned char* ws = workspace(panels * panel_stride);
  const std::int32_t offset = weight_offset(T);
  // Quantise x into panels, a panel per task (rows past m are zero, with zero scales).
  pool.for_each_index(panels, [&](std::size_t p) HWY_ATTR {
    for (std::size_t b = 0; b < blocks; ++b) {
      unsigned char* block = ws + p * panel_stride + b * kPanelBlockBytes;
      auto* start = reinterpret_cast<std::int32_t*>(block + 512);
      auto* scale = reinterpret_cast<float*>(block + 576);
      for (std::size_t r = 0; r < kPanelRows; ++r) {
        const std::size_t i = p * kPanelRows + r;
        if (i >= m) {
          for (std::size_t s = 0; s < 8; ++s) std::memset(block + 64 * s + 4 * r, 0, 4);
          start[r] = 0;
          scale[r] = 0.0f;
          continue;
        }
        HWY_ALIGN std::int8_t q[kBlock];
        std::int32_t sum;
        scale[r] = quantize_block_q8(df, x + i * ldx + b * kBlock, q, &sum);
        start[r] = -offset * sum;
        for (std::size_t s = 0; s < 8; ++s) std::memcpy(block + 64 * s + 4 * r, q + 4 * s, 4);
      }
    }
  });
  // Tasks are fixed groups of weight rows; inside, pairs of panels (in L1 for the usual widths)
  // pass over the group's rows four at a time.
  const std::size_t grain = std::max<std::size_t>(1, 65536 / (stride * kTileWeightRows)) * kTileWeightRows;
  pool.for_each_chunk(rows, grain, [&](std::size_t begin, std::size_t end) HWY_ATTR {
    HWY_ALIGN float tile[2 * kTileWeightRows * kPanelRows];
    for (std::size_t p = 0; p < panels; p += 2) {
      const std::size_t mr = std::min<std::size_t>(2, panels - p);
      for (std::size_t r = begin; r < end; r += kTileWeightRows) {
        const unsigned char* row[kTileWeightRows];
        for (std::size_t j = 0; j < kTileWeightRows; ++j) row[j] = w + std::min(r + j, end - 1) * stride;
        const unsigned char* first = ws + p * panel_stride;
        if (mr == 2) panel_tile<Dot, T, 2>(row, blocks, first, panel_stride, tile);
        else panel_tile<Dot, T, 1>(row, blocks, first, panel_stride, tile);
        for (std::size_t i = 0; i < mr; ++i)
          for (std::size_t lane = 0; lane < kPanelRows; ++lane) {
            const std::size_t xi = (p + i) * kPanelRows + lane;
            if (xi >= m) break;
            for (std::size_t j = 0; j < kTileWeightRows && r + j < end; ++j)
              y[xi * ldy + r + j] = tile[(i * kTileWeightRows + j) * kPanelRows + lane];
          }
      }
    }
  });
}

/// Prompts of at least this many rows take the panel path.
constexpr std::size_t kPanelMinRows = 8;

template <class Dot>
HWY_INLINE void matmul_avx512(const float* x, std::size_t m, std::size_t ldx, weight_type type, const unsigned char* w,
                              std::size_t rows, std::size_t cols, float* y, std::size_t ldy, const thread_pool& pool) {
  if (type == weight_type::q8_0) {
    if (m >= kPanelMinRows) panel_all<Dot, weight_type::q8_0>(x, m, ldx, w, rows, cols, y, ldy, pool);
    else direct_all<Dot, weight_type::q8_0>(x, m, ldx, w, rows, cols, y, ldy, pool);
  } else {
    if (m >= kPanelMinRows) panel_all<Dot, weight_type::q4_0>(x, m, ldx, w, rows, cols, y, ldy, pool);
    else direct_all<Dot, weight_type::q4_0>(x, m, ldx, w, rows, cols, y, ldy, pool);
  }
}
#endif  // AVX-512

}  // namespace quant_detail

// ---- exported kernels ---------------------------------------------------------------------------

/// n blocks of 32 floats to Q8_0 (ggml's reference definition).
inline void quantize_q8_0(const float* x, block_q8_0* out, std::size_t blocks) {
  const hn::ScalableTag<float> df;
  for (std::size_t b = 0; b < blocks; ++b) {
    std::int32_t sum;
    // The scale is the f16 of d, so storing the returned widened value again gives the same bits.
    out[b].d = f16::from_float(quant_detail::quantize_block_q8(df, x + b * 32, out[b].qs, &sum));
  }
}

/// n blocks of 32 floats to Q4_0 (ggml's reference definition).
inline void quantize_q4_0(const float* x, block_q4_0* out, std::size_t blocks) {
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* v = x + b * 32;
    // The first value of largest magnitude, with its sign (a block of zeros keeps +0).
    float amax = 0.0f, max = 0.0f;
    bool finite = true;
    for (std::size_t i = 0; i < 32; ++i) {
      finite = finite && std::isfinite(v[i]);
      if (amax < std::fabs(v[i])) {
        amax = std::fabs(v[i]);
        max = v[i];
      }
    }
    if (!finite) {  // as in quantize_block_q8: zeros with a NaN scale, never an undefined conversion
      out[b].d = f16::from_float(std::numeric_limits<float>::quiet_NaN());
      std::fill(out[b].qs, out[b].qs + 16, std::uint8_t{0x88});
      continue;
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = f16::from_float(d);
    for (std::size_t i = 0; i < 16; ++i) {
      const int lo = std::min(15, static_cast<int>(static_cast<std::int8_t>(quant_detail::unfused(v[i] * id) + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<std::int8_t>(quant_detail::unfused(v[i + 16] * id) + 8.5f)));
      out[b].qs[i] = static_cast<std::uint8_t>(lo | (hi << 4));
    }
  }
}

/// Blocks to floats; `in` needs no alignment (a mapped file's rows).
inline void dequantize_q8_0(const void* in, float* out, std::size_t blocks) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<std::int8_t, decltype(di)> d8;
  const std::size_t n = hn::Lanes(df);
  const auto* p = static_cast<const unsigned char*>(in);
  for (std::size_t b = 0; b < blocks; ++b, p += sizeof(block_q8_0)) {
    const auto d = hn::Set(df, quant_detail::load_f16(p));
    const auto* q = reinterpret_cast<const std::int8_t*>(p + 2);
    for (std::size_t i = 0; i < 32; i += n)
      hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + i))), d), df, out + b * 32 + i);
  }
}
inline void dequantize_q4_0(const void* in, float* out, std::size_t blocks) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<std::uint8_t, decltype(di)> d8;
  const std::size_t n = std::min<std::size_t>(hn::Lanes(df), 16);
  const auto* p = static_cast<const unsigned char*>(in);
  const auto low = hn::Set(di, 15), eight = hn::Set(di, 8);
  for (std::size_t b = 0; b < blocks; ++b, p += sizeof(block_q4_0)) {
    const auto d = hn::Set(df, quant_detail::load_f16(p));
    for (std::size_t i = 0; i < 16; i += n) {
      const auto bytes = hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<decltype(di)>(), hn::LoadU(d8, p + 2 + i)));
      const auto lo = hn::Sub(hn::And(bytes, low), eight), hi = hn::Sub(hn::ShiftRight<4>(bytes), eight);
      hn::StoreU(hn::Mul(hn::ConvertTo(df, lo), d), df, out + b * 32 + i);
      hn::StoreU(hn::Mul(hn::ConvertTo(df, hi), d), df, out + b * 32 + 16 + i);
    }
  }
}

/// y [m x rows] (row stride ldy) = x [m x cols] (row stride ldx) * W^T for W of a block type.
/// Shapes are checked by the caller (kernels.hpp).
inline void matmul_quant(const float* x, std::size_t m, std::size_t ldx, weight_type type, const void* w,
                         std::size_t rows, std::size_t cols, float* y, std::size_t ldy, const thread_pool& pool) {
  if (m == 0 || rows == 0) return;
  if (cols == 0) {
    for (std::size_t i = 0; i < m; ++i) std::fill(y + i * ldy, y + i * ldy + rows, 0.0f);
    return;
  }
  const auto* bytes = static_cast<const unsigned char*>(w);
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if (quant_detail::cpu_has_vnni())
    quant_detail::matmul_avx512<quant_detail::dot_vnni>(x, m, ldx, type, bytes, rows, cols, y, ldy, pool);
  else
    quant_detail::matmul_avx512<quant_detail::dot_bw>(x, m, ldx, type, bytes, rows, cols, y, ldy, pool);
#else
  quant_detail::matmul_generic(x, m, ldx, type, bytes, rows, cols, y, ldy, pool);
#endif
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
