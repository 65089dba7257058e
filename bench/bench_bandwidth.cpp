// Memory bandwidth, the roofline of decoding: a STREAM-style triad a = b + s c over three arrays
// far larger than the caches, with 1 and 2 threads (bench/triad.hpp; the decoding benchmarks run
// the same triad beside themselves).
#include <benchmark/benchmark.h>

#include "triad.hpp"

BENCHMARK(lmkit::bench::triad)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
