// The counters every training-step benchmark reports: milliseconds per step, tokens per second,
// and the process's peak resident memory.
#pragma once

#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <cstddef>

inline void set_step_counters(benchmark::State& state, std::size_t tokens_per_step) {
  // (iterations / 1000) per second, inverted: milliseconds per iteration.
  state.counters["ms_per_step"] = benchmark::Counter(static_cast<double>(state.iterations()) / 1e3,
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens_per_step * state.iterations()),
                                                      benchmark::Counter::kIsRate);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["peak_rss_MiB"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
}
