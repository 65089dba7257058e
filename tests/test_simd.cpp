// simd/transform.hpp: user functors written once against xsimd::batch<float>.
#include <cmath>

#include "lmkit/simd/transform.hpp"
#include "test_support.hpp"

using namespace lmkit;

TEST_CASE("a user functor runs on batches and on the tail", "[simd]") {
  const auto softsign = [](auto x) { return x / (1.0f + xsimd::abs(x)); };
  static_assert(simd::elementwise_functor<decltype(softsign)>);
  for (std::size_t n : test::awkward_sizes()) {
    INFO("n = " << n);
    const auto in = test::random_floats(n, 1, -5, 5);
    std::vector<float> out(n);
    simd::transform(in, out, softsign);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(out[i] == in[i] / (1.0f + std::abs(in[i])));

    const auto other = test::random_floats(n, 2);
    simd::transform(in, other, out, [](auto a, auto b) { return a * b + 1.0f; });
    for (std::size_t i = 0; i < n; ++i) REQUIRE(test::close(out[i], in[i] * other[i] + 1.0f, 1e-6, 1e-6));
  }
  std::vector<float> a(3), b(4);
  REQUIRE_THROWS_AS(simd::transform(a, b, softsign), shape_error);
}
