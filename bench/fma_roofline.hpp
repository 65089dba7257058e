// The f32 roofline of one core: multiply-adds of the widest vectors the CPU has (AVX-512, else
// AVX2 with FMA) into 16 independent sums held in registers, nothing read from memory. 16 sums
// cover latency x FMA pipes on current x86 cores (4 x 2), so the loop runs at the FMA issue rate.
// Every f32 matrix product, lmkit's or OpenBLAS's, is bounded by it; the training benchmarks report
// their model FLOPs as a share of it (model_flops.hpp).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace lmkit_bench {

#if defined(__x86_64__)
/// FLOPs done: `steps` rounds of 16 vector FMAs of 16 lanes.
__attribute__((target("avx512f"))) inline double fma_rounds_avx512(std::int64_t steps) {
  __m512 sum[16];
  for (auto& s : sum) s = _mm512_setzero_ps();
  __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-7f);
  benchmark::DoNotOptimize(a);
  benchmark::DoNotOptimize(b);
  for (std::int64_t i = 0; i < steps; ++i)
    for (auto& s : sum) s = _mm512_fmadd_ps(a, b, s);
  for (auto& s : sum) benchmark::DoNotOptimize(s);
  return static_cast<double>(steps) * 16 * 16 * 2;
}

/// FLOPs done: `steps` rounds of 16 vector FMAs of 8 lanes.
__attribute__((target("avx2,fma"))) inline double fma_rounds_avx2(std::int64_t steps) {
  __m256 sum[16];
  for (auto& s : sum) s = _mm256_setzero_ps();
  __m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(1e-7f);
  benchmark::DoNotOptimize(a);
  benchmark::DoNotOptimize(b);
  for (std::int64_t i = 0; i < steps; ++i)
    for (auto& s : sum) s = _mm256_fmadd_ps(a, b, s);
  for (auto& s : sum) benchmark::DoNotOptimize(s);
  return static_cast<double>(steps) * 16 * 8 * 2;
}
#endif

/// FLOPs done by `steps` rounds on this CPU's widest FMA; 0 where it has none (not x86, or no FMA).
inline double fma_rounds(std::int64_t steps) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return fma_rounds_avx512(steps);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_rounds_avx2(steps);
#endif
  (void)steps;
  return 0;
}

/// One core's f32 FMA rate in GFLOP/s: the best of five runs of about 20 ms, measured once per
/// process (the first call); 0 where fma_rounds has no FMA to run.
inline double f32_fma_peak_gflops() {
  static const double peak = [] {
    double best = 0;
    for (int run = 0; run < 5; ++run) {
      const auto start = std::chrono::steady_clock::now();
      const double flops = fma_rounds(1 << 20);
      const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
      if (flops > 0) best = std::max(best, flops / seconds.count() * 1e-9);
    }
    return best;
  }();
  return peak;
}

/// The roofline as a benchmark of its own ("f32_fma/peak"), one thread.
inline void f32_fma_peak(benchmark::State& state) {
  if (fma_rounds(1) == 0) return state.SkipWithError("this CPU has no FMA instructions this roofline knows");
  constexpr std::int64_t steps = 4096;
  double flops = 0;
  for (auto _ : state) flops += fma_rounds(steps);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["threads"] = 1;
}

}  // namespace lmkit_bench
