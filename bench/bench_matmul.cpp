// Matrix product throughput, lmkit beside OpenBLAS's cblas_sgemm in the same run, in GFLOP/s.
// Square sizes, and the two shapes of a 124M-parameter transformer: decoding one token
// (1x768 times 768x2304) and a 128-token prompt (128x768 times 768x3072); and two training
// products: the char GPT's q, k, v projection (768 tokens, 128 -> 384) and GPT-2 small's (1024
// tokens, 768 -> 2304). lmkit/bf16_products_Bt is the bf16-products product (AMX tiles where the CPU
// has them, else AVX512-BF16 dot products; docs/kernels.md) on f32 operands; amx/* and
// bf16_dot/peak are its rooflines (below); f32_fma/peak is the f32 products' (fma_roofline.hpp).
//
//   build/bench/bench_matmul --benchmark_counters_tabular=true
// bench/run_matmul.sh runs it with OpenBLAS's default kernels and, where the CPU has AVX-512,
// with OPENBLAS_CORETYPE=SkylakeX, and prints the lmkit/OpenBLAS ratios.
#include <benchmark/benchmark.h>

#include <lmkit/lmkit.hpp>

#include "fma_roofline.hpp"

#if LMKIT_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct problem_data {
  problem_data(std::size_t m, std::size_t n, std::size_t k)
      : a(m * k, lmkit::uninitialized), b(k * n, lmkit::uninitialized), b_bf16(k * n), c(m * n) {
    lmkit::philox rng(lmkit::seed{1});
    for (auto& v : a) v = rng.uniform() - 0.5f;
    for (auto& v : b) v = rng.uniform() - 0.5f;
    lmkit::kernels::convert(std::span<const float>(b.data(), b.size()), std::span<lmkit::bf16>(b_bf16.data(), b_bf16.size()));
  }
  lmkit::aligned_buffer<float> a, b;
  lmkit::aligned_buffer<lmkit::bf16> b_bf16;
  lmkit::aligned_buffer<float> c;
};

void set_counters(benchmark::State& state, std::size_t m, std::size_t n, std::size_t k) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(m) * double(n) * double(k) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(state.range(3));
}

// Args: m, n, k, threads. `transposed_b` stores B as [n x k] (a weight [out, in]).
template <lmkit::dtype BType, bool TransposedB,
          lmkit::kernels::product_precision Products = lmkit::kernels::product_precision::f32>
void lmkit_gemm(benchmark::State& state) {
  const std::size_t m = state.range(0), n = state.range(1), k = state.range(2);
  const lmkit::thread_pool pool(static_cast<int>(state.range(3)));
  problem_data data(m, n, k);
  const void* b = BType == lmkit::dtype::f32 ? static_cast<const void*>(data.b.data()) : data.b_bf16.data();
  const lmkit::kernels::gemm_problem problem{
      m, n, k, {data.a.data(), lmkit::dtype::f32, k, false}, {b, BType, TransposedB ? k : n, TransposedB}, data.c.data(), n, false,
      Products};
  lmkit::kernels::gemm(problem, pool);  // warm the workspace
  for (auto _ : state) {
    lmkit::kernels::gemm(problem, pool);
    benchmark::DoNotOptimize(data.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, m, n, k);
  state.SetLabel(lmkit::kernels::active_target());
}

#if LMKIT_BENCH_OPENBLAS
template <bool TransposedB>
void openblas_sgemm(benchmark::State& state) {
  const std::size_t m = state.range(0), n = state.range(1), k = state.range(2);
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  problem_data data(m, n, k);
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, TransposedB ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f,
                data.a.data(), int(k), data.b.data(), TransposedB ? int(k) : int(n), 0.0f, data.c.data(), int(n));
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(data.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, m, n, k);
  state.SetLabel(openblas_get_corename());
}
#endif

#if LMKIT_HAS_AMX_PATH
namespace amx = lmkit::kernels::amx_detail;

// Two rooflines for lmkit/bf16_products_Bt. amx/tile_peak: the tiles' own rate, TDPBF16PS on tiles
// already loaded into four independent sums (nothing read from memory). amx/multiply_packed: the
// product's inner loops (amx_detail::multiply_region) on operands packed once beforehand, one
// task's 128-row band, the operands in L2: the product without its packing.
__attribute__((target("amx-tile,amx-bf16"))) void amx_tile_peak(benchmark::State& state) {
  if (!lmkit::kernels::amx_bf16_usable()) return state.SkipWithError("this CPU has no usable AMX tiles");
  amx::tile_config config;
  for (int t = 0; t < 8; ++t) config.rows[t] = 16, config.bytes_per_row[t] = 64;
  _tile_loadconfig(&config);
  alignas(64) static std::uint16_t operand[512];
  alignas(64) static float sum[256];
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  constexpr int steps = 4096;
  for (auto _ : state) {
    for (int i = 0; i < steps; ++i) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, sum, 64);
  benchmark::DoNotOptimize(sum[0]);
  _tile_release();
  state.counters["GFLOP/s"] = benchmark::Counter(steps * 4 * 2.0 * 16 * 16 * 32 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = 1;
}

// The roofline of the tile-less bf16 kernel (gemm_bf16_dot): VDPBF16PS into 16 independent sums
// held in registers, nothing read from memory.
__attribute__((target("avx512f,avx512bf16"))) void bf16_dot_peak(benchmark::State& state) {
  if (!lmkit::kernels::bf16_dot_usable()) return state.SkipWithError("this CPU has no AVX512-BF16");
  __m512 sum[16];
  for (auto& s : sum) s = _mm512_setzero_ps();
  __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = a;  // pairs of bf16 1.0
  benchmark::DoNotOptimize(a);
  benchmark::DoNotOptimize(b);
  constexpr int steps = 4096;
  for (auto _ : state) {
    for (int i = 0; i < steps; ++i)
      for (auto& s : sum) s = _mm512_dpbf16_ps(s, a, b);
    for (auto& s : sum) benchmark::DoNotOptimize(s);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(steps * 16 * 2.0 * 32 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = 1;
}

void amx_multiply_packed(benchmark::State& state) {
  if (!lmkit::kernels::amx_bf16_usable()) return state.SkipWithError("this CPU has no usable AMX tiles");
  const std::size_t m = state.range(0), n = state.range(1), k = state.range(2);
  problem_data data(m, n, k);
  const lmkit::kernels::gemm_problem problem{
      m, n, k, {data.a.data(), lmkit::dtype::f32, k, false}, {data.b.data(), lmkit::dtype::f32, k, true}, data.c.data(), n, false,
      lmkit::kernels::product_precision::bf16};
  const std::size_t m_pad = amx::round_up(m, amx::block), n_pad = amx::round_up(n, amx::block), k_pad = amx::round_up(k, 32);
  lmkit::aligned_buffer<std::uint16_t> a(m_pad * k_pad), b(k_pad * n_pad);
  amx::pack_a(problem.a, m, k, k_pad, a.data(), 0, m_pad, 0);
  amx::pack_b(problem.b, k, n, k_pad, b.data(), 0, k_pad / 2, 0, n_pad);
  for (auto _ : state) {
    amx::multiply_region(problem, a.data(), 0, b.data(), 0, k_pad, 0, m, 0, n, true);
    benchmark::DoNotOptimize(data.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, m, n, k);
}
#endif

void shapes(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (int size : {256, 512, 1024, 2048}) b->Args({size, size, size, threads});
    b->Args({1, 2304, 768, threads});    // decode: one token through a 768 -> 2304 projection
    b->Args({128, 3072, 768, threads});  // prefill: a 128-token prompt through 768 -> 3072
    b->Args({768, 384, 128, threads});    // training: the char GPT's q, k, v projection
    b->Args({1024, 2304, 768, threads});  // training: GPT-2 small's
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(lmkit_gemm<lmkit::dtype::f32, false>)->Name("lmkit/f32")->Apply(shapes);
BENCHMARK(lmkit_gemm<lmkit::dtype::f32, true>)->Name("lmkit/f32_Bt")->Apply(shapes);
BENCHMARK(lmkit_gemm<lmkit::dtype::bf16, true>)->Name("lmkit/bf16_Bt")->Apply(shapes);
BENCHMARK(lmkit_gemm<lmkit::dtype::f32, true, lmkit::kernels::product_precision::bf16>)
    ->Name("lmkit/bf16_products_Bt")
    ->Apply(shapes);
BENCHMARK(lmkit_bench::f32_fma_peak)->Name("f32_fma/peak");
#if LMKIT_HAS_AMX_PATH
BENCHMARK(amx_tile_peak)->Name("amx/tile_peak");
BENCHMARK(bf16_dot_peak)->Name("bf16_dot/peak");
BENCHMARK(amx_multiply_packed)->Name("amx/multiply_packed")->Args({128, 256, 768, 1})->Args({128, 384, 128, 1})->UseRealTime();
#endif
#if LMKIT_BENCH_OPENBLAS
BENCHMARK(openblas_sgemm<false>)->Name("openblas/f32")->Apply(shapes);
BENCHMARK(openblas_sgemm<true>)->Name("openblas/f32_Bt")->Apply(shapes);
#endif

BENCHMARK_MAIN();
