// The vector kernels beside their plain scalar references (kernels/reference.hpp) in the same run:
// elements per second on one row of 4096 floats (in L1), so the ratio is the SIMD speed-up.
#include <benchmark/benchmark.h>

#include <lmkit/kernels/reference.hpp>
#include <lmkit/lmkit.hpp>

namespace {

namespace k = lmkit::kernels;
namespace ref = lmkit::kernels::reference;
constexpr std::size_t n = 4096;

std::vector<float> input(std::uint64_t stream) {
  lmkit::philox rng(lmkit::seed{3}, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = 8.0f * rng.uniform() - 4.0f;
  return v;
}

template <class Body>
void run(benchmark::State& state, Body body) {
  for (auto _ : state) {
    body();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

const std::vector<float> x = input(1), w = input(2), dy = input(3);
std::vector<float> out(n), grad(n);

}  // namespace

BENCHMARK_CAPTURE(run, lmkit_softmax, [] { k::softmax(x, out); });
BENCHMARK_CAPTURE(run, reference_softmax, [] { ref::softmax(x.data(), out.data(), n); });
BENCHMARK_CAPTURE(run, lmkit_rms_norm, [] { k::rms_norm(x, w, out); });
BENCHMARK_CAPTURE(run, reference_rms_norm, [] { ref::rms_norm(x.data(), w.data(), out.data(), n, 1e-5f, nullptr); });
BENCHMARK_CAPTURE(run, lmkit_layer_norm_backward, [] {
  k::layer_norm_backward(x, w, {0.1f, 1.2f}, dy, grad, out, {});
});
BENCHMARK_CAPTURE(run, reference_layer_norm_backward, [] {
  ref::layer_norm_backward(x.data(), w.data(), 0.1f, 1.2f, dy.data(), grad.data(), out.data(), nullptr, n);
});
BENCHMARK_CAPTURE(run, lmkit_gelu_tanh, [] { k::gelu_tanh(x, out); });
BENCHMARK_CAPTURE(run, reference_gelu_tanh, [] {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(ref::gelu_tanh(x[i]));
});
BENCHMARK_CAPTURE(run, lmkit_silu, [] { k::silu(x, out); });
BENCHMARK_CAPTURE(run, reference_silu, [] {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(ref::silu(x[i]));
});
BENCHMARK_CAPTURE(run, lmkit_rope, [] {
  static std::vector<float> cos(64), sin(64);
  k::rope(out, 128, cos, sin, k::rope_style::half_rotation);
});
BENCHMARK_CAPTURE(run, reference_rope, [] {
  static std::vector<float> cos(64), sin(64);
  ref::rope_half(out.data(), 128, n / 128, cos.data(), sin.data(), false);
});

BENCHMARK_MAIN();
