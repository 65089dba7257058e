// Uses a tensor, a dispatched kernel, the thread pool, an xsimd functor and a Unicode normaliser
// (utf8proc): if this builds, links and prints the right numbers, the package exports everything a
// user needs.
#include <cstdio>

#include <lmkit/lmkit.hpp>

int main() {
  lmkit::tensor<float, lmkit::extents<2, 3>> a;
  lmkit::tensor<float, lmkit::dims<2>> b(3, 2), c(2, 2);
  for (std::size_t i = 0; i < 6; ++i) a.data()[i] = b.data()[i] = static_cast<float>(i + 1);
  const lmkit::thread_pool pool(2);
  lmkit::kernels::matmul(std::as_const(a).view(), std::as_const(b).view(), c.view(), pool);
  std::vector<float> probabilities(4);
  lmkit::kernels::softmax(c.span(), probabilities);
  lmkit::simd::transform(probabilities, probabilities, [](auto x) { return x * 2.0f; });
  // [1 2 3; 4 5 6] * [1 2; 3 4; 5 6] = [22 28; 49 64]
  const lmkit::text::normalizer_chain<lmkit::text::nfkc, lmkit::text::case_fold> normalize{};
  const bool text_ok = normalize("\xEF\xBC\xA1\xEF\xAC\x81") == "afi";  // full-width A, fi ligature
  const bool ok = c(0, 0) == 22 && c(0, 1) == 28 && c(1, 0) == 49 && c(1, 1) == 64 && probabilities[3] > 1.99f && text_ok;
  std::printf("consumer: target %s, c = [%g %g; %g %g] %s\n", lmkit::kernels::active_target(), c(0, 0), c(0, 1), c(1, 0),
              c(1, 1), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
