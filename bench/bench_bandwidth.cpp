// Memory bandwidth, the roofline of decoding: a STREAM-style triad a = b + s c over three arrays
// far larger than the caches, with 1 and 2 threads. GB/s counts the 3 arrays' bytes per pass
// (two reads, one write), as STREAM does.
#include <benchmark/benchmark.h>

#include <lmkit/lmkit.hpp>

namespace {

void triad(benchmark::State& state) {
  const std::size_t n = std::size_t{64} << 20;  // 64 Mi floats = 256 MiB per array
  const lmkit::thread_pool pool(static_cast<int>(state.range(0)));
  lmkit::aligned_buffer<float> a(n), b(n), c(n);  // zero-filled: every page touched before timing
  const float s = 3.0f;
  auto pass = [&] {
    pool.for_each_chunk(n, 1 << 20, [&](std::size_t begin, std::size_t end) {
      float* __restrict pa = a.data();
      const float* __restrict pb = b.data();
      const float* __restrict pc = c.data();
      for (std::size_t i = begin; i < end; ++i) pa[i] = pb[i] + s * pc[i];
    });
  };
  pass();
  for (auto _ : state) {
    pass();
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * n * sizeof(float) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(triad)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
