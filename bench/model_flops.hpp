// Model FLOPs of a training step: the matrix products any implementation of the model has to
// compute, counted the way MFU is (PaLM's appendix B, nanoGPT's estimate_mfu): a forward
// multiply-add is 2 FLOPs, and the backward pass computes two products (the input's gradient and
// the weight's) for each of the forward's, so a step is 3 x the forward's 2 FLOPs per weight and
// token. Element-wise work (norms, activations, the optimizer) is not counted. The same count
// divides PyTorch's time, so the rate compares the two implementations' arithmetic speed, and its
// share of the FMA roofline (fma_roofline.hpp) says how much faster any f32 step could be.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>

#include "fma_roofline.hpp"
#include "lmkit/models/gpt.hpp"
#include "lmkit/models/lstm_lm.hpp"

namespace lmkit_bench {

/// A GPT step over `tokens` tokens in sequences of `time`: 6 FLOPs per weight of the blocks'
/// products and the output head (tied or not: the head's product is done either way) per token,
/// and attention's two products (scores and mixing) over the whole time x time square, as
/// nanoGPT counts them (a causal kernel can skip half of them).
inline double gpt_step_flops(const lmkit::models::gpt_config& c, std::size_t tokens, std::size_t time) {
  const double d = c.dim, block_weights = 4 * d * d + 2 * d * c.hidden_width();
  const double weights = c.layers * block_weights + d * c.vocab;
  const double attention_per_token = 12.0 * c.layers * time * d;  // 2 products x 2 FLOPs x 3 (fwd + bwd) x T x d
  return tokens * (6 * weights + attention_per_token);
}

/// An LSTM language model's step over `tokens` tokens: each layer's gate products (input and
/// recurrent, 4 H outputs from E or H inputs plus H) and the output head, 6 FLOPs per weight per
/// token. (lmkit's LSTM takes the first layer's input product once per vocabulary entry, not per
/// token, and so computes fewer: 7.5% of this count fewer for the char LSTM. The count is the
/// model's, as MFU's is, not the implementation's.)
inline double lstm_step_flops(const lmkit::models::lstm_lm_config& c, std::size_t tokens) {
  const double gates = 4.0 * c.hidden;
  double weights = gates * (c.embedding + c.hidden) + static_cast<double>(c.hidden) * c.vocab;
  for (std::size_t layer = 1; layer < c.layers; ++layer) weights += gates * (2.0 * c.hidden);
  return 6 * tokens * weights;
}

/// Counters: model_GFLOP/s, and of_fma_peak, that rate over `threads` cores' FMA roofline (both
/// rates over the benchmark's clock, real time where it uses real time).
inline void set_model_flops_counters(benchmark::State& state, double flops_per_step, int threads) {
  const double gflop = flops_per_step * 1e-9 * static_cast<double>(state.iterations());
  state.counters["model_GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  if (const double peak = f32_fma_peak_gflops() * threads; peak > 0)
    state.counters["of_fma_peak"] = benchmark::Counter(gflop / peak, benchmark::Counter::kIsRate);
}

}  // namespace lmkit_bench
