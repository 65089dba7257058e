// kernel_check: the kernels checked against their scalar references on every CPU target this
// machine supports, then a short speed summary (matrix product GFLOP/s, memory bandwidth).
// lmkit's main example until the model families land.
#include <hwy/targets.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <lmkit/kernels/reference.hpp>
#include <lmkit/lmkit.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

void usage() {
  std::puts(
      "usage: kernel_check [--size N] [--threads N] [--quick]\n"
      "  Checks every kernel against its scalar reference on each CPU target this machine runs,\n"
      "  then times an N x N x N matrix product (default 1024) with 1 and --threads threads\n"
      "  (default: all cores) and a memory-bandwidth triad.\n"
      "  --quick  skip the timings");
}

std::vector<float> random_vector(std::size_t n, std::uint64_t stream, float scale = 1.0f) {
  lmkit::philox rng(lmkit::seed{7}, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * (2.0f * rng.uniform() - 1.0f);
  return v;
}

/// Largest difference, relative to the largest magnitude in the reference (the vector's scale:
/// outputs near zero carry absolute, not relative, rounding errors).
double max_relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 1e-30;
  for (float w : want) scale = std::max(scale, std::abs(double{w}));
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double{got[i]} - want[i]));
  return worst / scale;
}

struct check {
  const char* name;
  double tolerance;
  std::function<double()> run;  // returns the largest relative error against the reference
};

/// An activation against its scalar definition, on inputs in [-6, 6].
check activation_check(const char* name, void (*kernel)(std::span<const float>, std::span<float>), double (*reference)(double),
                       std::uint64_t stream) {
  return {name, 1e-5, [=] {
            auto x = random_vector(1000, stream, 6), got = x, want = x;
            kernel(x, got);
            for (std::size_t i = 0; i < x.size(); ++i) want[i] = static_cast<float>(reference(x[i]));
            return max_relative_error(got, want);
          }};
}

std::vector<check> checks() {
  namespace k = lmkit::kernels;
  namespace ref = lmkit::kernels::reference;
  const std::size_t n = 1000;
  return {
      {"softmax", 1e-5,
       [=] {
         auto x = random_vector(n, 1, 20), got = x, want = x;
         k::softmax(x, got);
         ref::softmax(x.data(), want.data(), n);
         return max_relative_error(got, want);
       }},
      {"log_softmax", 1e-5,
       [=] {
         auto x = random_vector(n, 2, 20), got = x, want = x;
         k::log_softmax(x, got);
         ref::log_softmax(x.data(), want.data(), n);
         return max_relative_error(got, want);
       }},
      {"layer_norm", 1e-4,
       [=] {
         auto x = random_vector(n, 3), w = random_vector(n, 4), b = random_vector(n, 5), got = x, want = x;
         k::layer_norm(x, w, b, got);
         ref::layer_norm(x.data(), w.data(), b.data(), want.data(), n, 1e-5f, nullptr, nullptr);
         return max_relative_error(got, want);
       }},
      {"rms_norm", 1e-5,
       [=] {
         auto x = random_vector(n, 6), w = random_vector(n, 7), got = x, want = x;
         k::rms_norm(x, w, got);
         ref::rms_norm(x.data(), w.data(), want.data(), n, 1e-5f, nullptr);
         return max_relative_error(got, want);
       }},
      activation_check("gelu_tanh", k::gelu_tanh, ref::gelu_tanh, 8),
      activation_check("gelu_erf", k::gelu_erf, ref::gelu_erf, 9),
      activation_check("silu", k::silu, ref::silu, 10),
      {"rope", 1e-5,
       [=] {
         std::vector<float> cos(32), sin(32);
         k::rope_angles(77, 64, 10000.0, cos, sin);
         auto x = random_vector(64 * 12, 11), got = x, want = x;
         k::rope(got, 64, cos, sin, k::rope_style::adjacent_pairs);
         ref::rope_adjacent(want.data(), 64, 12, cos.data(), sin.data(), false);
         return max_relative_error(got, want);
       }},
      {"matmul 67x45x300", 1e-4,
       [] {
         const std::size_t m = 67, nn = 45, kk = 300;
         auto a = random_vector(m * kk, 12), b = random_vector(kk * nn, 13);
         std::vector<float> got(m * nn), want(m * nn);
         lmkit::kernels::gemm_problem p{m, nn, kk, {a.data(), lmkit::dtype::f32, kk, false},
                                        {b.data(), lmkit::dtype::f32, nn, false}, got.data(), nn, false};
         k::gemm(p);
         p.c = want.data();
         ref::gemm(p);
         return max_relative_error(got, want);
       }},
  };
}

double gemm_gflops(std::size_t size, const lmkit::thread_pool& pool) {
  auto a = random_vector(size * size, 20), b = random_vector(size * size, 21);
  std::vector<float> c(size * size);
  const lmkit::kernels::gemm_problem p{size, size, size, {a.data(), lmkit::dtype::f32, size, false},
                                       {b.data(), lmkit::dtype::f32, size, false}, c.data(), size, false};
  lmkit::kernels::gemm(p, pool);  // warm-up
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto start = clock_type::now();
    lmkit::kernels::gemm(p, pool);
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
  }
  return 2.0 * double(size) * double(size) * double(size) / best * 1e-9;
}

double triad_gbps(const lmkit::thread_pool& pool) {
  const std::size_t n = std::size_t{32} << 20;
  lmkit::aligned_buffer<float> a(n), b(n), c(n);
  double best = 1e30;
  for (int r = 0; r < 4; ++r) {
    const auto start = clock_type::now();
    pool.for_each_chunk(n, 1 << 20, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) a[i] = b[i] + 3.0f * c[i];
    });
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
  }
  return 3.0 * n * sizeof(float) / best * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t size = 1024;
  int threads = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(), 0;
    if (arg == "--quick") quick = true;
    else if ((arg == "--size" || arg == "--threads") && i + 1 < argc) {
      const std::string value = argv[++i];
      char* end = nullptr;
      const long parsed = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || parsed < (arg == "--size" ? 1 : 0) || parsed > 65536) {
        std::fprintf(stderr, "kernel_check: %s needs a whole number, got '%s'\n", arg.c_str(), value.c_str());
        return 2;
      }
      if (arg == "--size") size = static_cast<std::size_t>(parsed);
      else threads = static_cast<int>(parsed);
    } else {
      return usage(), 2;
    }
  }

  std::printf("lmkit kernel check\n\n");
  bool all_ok = true;
  const auto targets = hwy::SupportedAndGeneratedTargets();
  for (const std::int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    std::printf("target %-8s", lmkit::kernels::active_target());
    for (const auto& c : checks()) {
      const double error = c.run();
      const bool ok = error <= c.tolerance;
      all_ok &= ok;
      if (!ok) std::printf("\n  %s: relative error %.3g above %.3g", c.name, error, c.tolerance);
    }
    std::printf(" %s\n", all_ok ? "all kernels agree with the scalar reference" : "");
  }
  hwy::SetSupportedTargetsForTest(0);
  std::printf("dispatch uses %s on this CPU\n", lmkit::kernels::active_target());
  if (!all_ok) {
    std::printf("\nFAILED: a kernel disagrees with its reference\n");
    return 1;
  }
  if (quick) return 0;

  const lmkit::thread_pool one(1), all(threads);
  std::printf("\nmatrix product %zux%zux%zu: %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n", size, size, size,
              gemm_gflops(size, one), gemm_gflops(size, all), all.threads());
  std::printf("memory bandwidth (triad): %.1f GB/s on 1 thread, %.1f GB/s on %d threads\n", triad_gbps(one),
              triad_gbps(all), all.threads());
  std::printf("(bench/run_matmul.sh compares the product with OpenBLAS in the same run)\n");
  return 0;
}
