// Uses a tensor, a dispatched kernel, the thread pool, an xsimd functor, a Unicode normaliser
// (utf8proc) and every model family (a GPT and an LSTM fixed at compile time, one training step
// each): if this builds, links and prints the right numbers, the package exports everything a
// user needs.
#include <cmath>
#include <cstdio>
#include <vector>

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
  // One step of each neural family on the same ids: the loss is about ln(vocab) at the start.
  constexpr lmkit::models::gpt_config gpt_size{.vocab = 16, .context = 8, .layers = 1, .heads = 2, .dim = 8};
  constexpr lmkit::models::lstm_lm_config lstm_size{.vocab = 16, .embedding = 4, .hidden = 8, .layers = 1};
  lmkit::models::gpt<gpt_size> gpt;
  lmkit::models::lstm_lm<lstm_size> lstm;
  gpt.init(lmkit::seed{1});
  lstm.init(lmkit::seed{1});
  const std::vector<lmkit::token_id> ids = {1, 2, 3, 4, 5, 6, 7, 8}, next = {2, 3, 4, 5, 6, 7, 8, 9};
  const float gpt_loss = gpt.forward(ids, next, {1, 8}, {&pool, true});
  const float lstm_loss = lstm.forward(ids, next, {1, 8}, {&pool, true});
  gpt.backward({&pool, true});
  lstm.backward({&pool, true});
  const bool models_ok = std::abs(gpt_loss - std::log(16.0f)) < 0.5f && std::abs(lstm_loss - std::log(16.0f)) < 0.5f;
  const bool ok = models_ok && c(0, 0) == 22 && c(0, 1) == 28 && c(1, 0) == 49 && c(1, 1) == 64 && probabilities[3] > 1.99f && text_ok;
  std::printf("consumer: target %s, c = [%g %g; %g %g] %s\n", lmkit::kernels::active_target(), c(0, 0), c(0, 1), c(1, 0),
              c(1, 1), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
