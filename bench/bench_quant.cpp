// matmul_weights for each weight type (f32, f16, q8_0, q4_0) on the matrices of a "stories110M"
// Llama (768x768, 2048x768, 768x2048, 32000x768), decoding (m = 1) and a 128-token prompt (m = 128),
// on 1 and 2 threads, with the decode roofline measured in the same run:
//   triad            STREAM-style a = b + s c over 3 x 256 MiB: the memory bandwidth;
//   matmul/<type>    GB/s of weights read and G-MAC/s; the weights rotate through copies that
//                    together exceed the caches, so that every call reads its matrix from memory;
//   model/<type>     all the matrix products of one token (12 layers x 7 matrices + the 32000-row
//                    classifier, 109M weights; no attention, norms or embedding): ms per token, GB/s;
//                    with m = 128, the prompt's products: tokens/s.
//
//   build/bench/bench_quant --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include "triad.hpp"

#include <cstring>
#include <memory>
#include <vector>

#include <lmkit/lmkit.hpp>

namespace {

using namespace lmkit;


/// Uniform values in [-1, 1) from a counter hash: fast, and the same on every run.
void fill_random(std::span<float> out, std::uint64_t stream) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint64_t z = (stream << 40) + i + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    out[i] = static_cast<float>(z >> 40) * 0x1p-23f - 1.0f;
  }
}

/// `rows x cols` random weights stored as `type` at `out` (row_bytes(type, cols) * rows bytes).
void make_weights(weight_type type, std::size_t rows, std::size_t cols, std::uint64_t stream, unsigned char* out) {
  std::vector<float> values(rows * cols);
  fill_random(values, stream);
  for (auto& v : values) v *= 0.05f;
  const std::size_t n = values.size();
  switch (type) {
    case weight_type::f32: std::memcpy(out, values.data(), n * 4); break;
    case weight_type::f16: kernels::convert(values, std::span<f16>(reinterpret_cast<f16*>(out), n)); break;
    case weight_type::bf16: kernels::convert(values, std::span<bf16>(reinterpret_cast<bf16*>(out), n)); break;
    case weight_type::q8_0:
      kernels::quantize_q8_0(values, std::span<block_q8_0>(reinterpret_cast<block_q8_0*>(out), n / 32));
      break;
    case weight_type::q4_0:
      kernels::quantize_q4_0(values, std::span<block_q4_0>(reinterpret_cast<block_q4_0*>(out), n / 32));
      break;
  }
}

/// Copies of one matrix, back to back, filling at least 1 GiB (more than this machine's caches):
/// consecutive calls read different copies. One set is kept at a time (benchmarks of the same
/// matrix run one after another).
struct rotating_weights {
  weight_type type;
  std::size_t rows, cols, copies;
  aligned_buffer<unsigned char> bytes;
  weight_matrix copy(std::size_t i) const {
    return {type, bytes.data() + (i % copies) * row_bytes(type, cols) * rows, rows, cols};
  }
};

const rotating_weights& weights_for(weight_type type, std::size_t rows, std::size_t cols) {
  static std::unique_ptr<rotating_weights> current;
  if (!current || current->type != type || current->rows != rows || current->cols != cols) {
    current.reset();  // free the previous set first
    const std::size_t size = row_bytes(type, cols) * rows;
    const std::size_t copies = std::max<std::size_t>(2, ((std::size_t{1} << 30) + size - 1) / size);
    auto w = std::make_unique<rotating_weights>(rotating_weights{type, rows, cols, copies, {}});
    w->bytes = aligned_buffer<unsigned char>(size * copies, uninitialized);
    make_weights(type, rows, cols, 1, w->bytes.data());
    for (std::size_t c = 1; c < copies; ++c) std::memcpy(w->bytes.data() + c * size, w->bytes.data(), size);
    current = std::move(w);
  }
  return *current;
}

void set_counters(benchmark::State& state, double weight_bytes, double macs) {
  state.counters["GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMAC/s"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(state.range(3));
}

// Args: rows (outputs), cols (inputs), m (rows of x), threads.
template <weight_type Type>
void matmul(benchmark::State& state) {
  const std::size_t rows = state.range(0), cols = state.range(1), m = state.range(2);
  const thread_pool pool(static_cast<int>(state.range(3)));
  const auto& w = weights_for(Type, rows, cols);
  std::vector<float> x(m * cols), y(m * rows);
  fill_random(x, 2);
  kernels::matmul_weights(x.data(), m, cols, w.copy(0), y.data(), rows, pool);  // warm the workspaces
  std::size_t call = 1;
  for (auto _ : state) {
    kernels::matmul_weights(x.data(), m, cols, w.copy(call++), y.data(), rows, pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, static_cast<double>(row_bytes(Type, cols) * rows), double(m) * double(rows) * double(cols));
  state.SetLabel(kernels::active_target());
}

void shapes(benchmark::internal::Benchmark* b) {
  for (auto [rows, cols] : {std::pair{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}})
    for (int m : {1, 128})
      for (int threads : {1, 2}) b->Args({rows, cols, m, threads});
  b->ArgNames({"rows", "cols", "m", "threads"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

/// The matrices of stories110M (dim 768, hidden 2048, 12 layers, vocab 32000), one buffer.
struct model_weights {
  explicit model_weights(weight_type type) {
    for (int layer = 0; layer < 12; ++layer) {
      for (int i = 0; i < 4; ++i) shapes.push_back({768, 768});  // wq, wk, wv, wo
      shapes.push_back({2048, 768});                            // w1 (gate)
      shapes.push_back({2048, 768});                            // w3 (up)
      shapes.push_back({768, 2048});                            // w2 (down)
    }
    shapes.push_back({32000, 768});  // classifier
    std::size_t total = 0;
    for (auto [rows, cols] : shapes) total += row_bytes(type, cols) * rows;
    bytes = aligned_buffer<unsigned char>(total, uninitialized);
    std::size_t offset = 0, stream = 10;
    for (auto [rows, cols] : shapes) {
      make_weights(type, rows, cols, stream++, bytes.data() + offset);
      matrices.push_back({type, bytes.data() + offset, rows, cols});
      offset += row_bytes(type, cols) * rows;
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> shapes;
  std::vector<weight_matrix> matrices;
  aligned_buffer<unsigned char> bytes;
};

// Args: m, threads.
template <weight_type Type>
void model(benchmark::State& state) {
  const std::size_t m = state.range(0);
  const thread_pool pool(static_cast<int>(state.range(1)));
  static std::unique_ptr<model_weights> weights;
  if (!weights || weights->matrices.front().type != Type) {
    weights.reset();
    weights = std::make_unique<model_weights>(Type);
  }
  std::vector<float> x(m * 2048), y(m * 32000);
  fill_random(x, 3);
  double bytes = 0, macs = 0;
  for (const auto& w : weights->matrices) {
    bytes += double(row_bytes(w.type, w.cols) * w.rows);
    macs += double(m) * double(w.rows) * double(w.cols);
  }
  auto token = [&] {
    for (const auto& w : weights->matrices) kernels::matmul_weights(x.data(), m, w.cols, w, y.data(), w.rows, pool);
  };
  token();
  for (auto _ : state) {
    token();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMAC/s"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] = benchmark::Counter(double(m), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ms/call"] = benchmark::Counter(1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(kernels::active_target());
}

void model_shapes(benchmark::internal::Benchmark* b) {
  for (int m : {1, 128, 512})
    for (int threads : {1, 2}) b->Args({m, threads});
  b->ArgNames({"m", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(lmkit::bench::triad)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(matmul<weight_type::f32>)->Name("matmul/f32")->Apply(shapes);
BENCHMARK(matmul<weight_type::f16>)->Name("matmul/f16")->Apply(shapes);
BENCHMARK(matmul<weight_type::q8_0>)->Name("matmul/q8_0")->Apply(shapes);
BENCHMARK(matmul<weight_type::q4_0>)->Name("matmul/q4_0")->Apply(shapes);
BENCHMARK(model<weight_type::f32>)->Name("model/f32")->Apply(model_shapes);
BENCHMARK(model<weight_type::f16>)->Name("model/f16")->Apply(model_shapes);
BENCHMARK(model<weight_type::q8_0>)->Name("model/q8_0")->Apply(model_shapes);
BENCHMARK(model<weight_type::q4_0>)->Name("model/q4_0")->Apply(model_shapes);

BENCHMARK_MAIN();
