// The memory-bandwidth roofline that decoding benchmarks report beside themselves: a STREAM-style
// triad a = b + s c over three 256 MiB arrays, with the thread count of the benchmark's argument.
// GB/s counts the three arrays' bytes per pass (two reads, one write), as STREAM does.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>

#include <lmkit/core/aligned_buffer.hpp>
#include <lmkit/core/parallel.hpp>

namespace lmkit::bench {

inline void triad(benchmark::State& state) {
  const std::size_t n = std::size_t{64} << 20;  // 64 Mi floats = 256 MiB per array
  const thread_pool pool(static_cast<int>(state.range(0)));
  aligned_buffer<float> a(n), b(n), c(n);  // zero-filled: every page touched before timing
  auto pass = [&] {
    pool.for_each_chunk(n, 1 << 20, [&](std::size_t begin, std::size_t end) {
      float* __restrict pa = a.data();
      const float* __restrict pb = b.data();
      const float* __restrict pc = c.data();
      for (std::size_t i = begin; i < end; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    });
  };
  pass();
  for (auto _ : state) {
    pass();
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * n * sizeof(float) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace lmkit::bench
