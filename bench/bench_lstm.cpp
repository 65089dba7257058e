// A training step of the char-LSTM the PyTorch peer trains (../shared/peers/pytorch/
// train_lstm_shakespeare.py): vocab 65, embedding 64, 2 LSTM layers of 256, batch 32 x 64 steps with
// the state carried between windows (truncated BPTT), Adam at 2e-3, gradient norm clipped at 5.
// At 1 and 2 threads; the counters give ms/step, peak memory and the model FLOPs' rate beside the
// FMA roofline (model_flops.hpp). bench/run_train.sh runs the peer beside it.
#include <benchmark/benchmark.h>

#include <vector>

#include "model_flops.hpp"
#include "step_counters.hpp"

#include "lmkit/models/lstm_lm.hpp"
#include "lmkit/train/adam.hpp"
#include "lmkit/train/parameter_list.hpp"

namespace {

using namespace lmkit;

void lstm_step(benchmark::State& state, kernels::product_precision products) {
  constexpr models::lstm_lm_config config{.vocab = 65, .embedding = 64, .hidden = 256, .layers = 2};
  const nn::batch_shape shape{32, 64};
  const thread_pool pool(static_cast<int>(state.range(0)));
  const nn::run_context ctx{.pool = &pool, .training = true, .products = products};
  models::lstm_lm<config> model;
  model.init(seed{1});
  model.carry_state(true);
  train::parameter_list params(model);
  train::adam optimizer(params, {.lr = 2e-3f, .decoupled = false});
  philox rng(seed{2});
  std::vector<token_id> ids(shape.rows()), targets(shape.rows());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = rng() % config.vocab, targets[i] = rng() % config.vocab;
  auto step = [&] {
    optimizer.zero_grad(pool);
    const float loss = model.forward(ids, targets, shape, ctx);
    model.backward(ctx);
    train::clip_gradient_norm(params, 5.0);
    optimizer.step(2e-3f, pool);
    return loss;
  };
  step();  // warm-up: buffers faulted in
  for (auto _ : state) benchmark::DoNotOptimize(step());
  set_step_counters(state, shape.rows());
  lmkit_bench::set_model_flops_counters(state, lmkit_bench::lstm_step_flops(config, shape.rows()),
                                        static_cast<int>(state.range(0)));
}

BENCHMARK_CAPTURE(lstm_step, shakespeare, kernels::product_precision::f32)
    ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
// bf16 products (`train --products bf16`; AMX tiles or AVX512-BF16 where the CPU has them).
BENCHMARK_CAPTURE(lstm_step, shakespeare_bf16, kernels::product_precision::bf16)
    ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(lmkit_bench::f32_fma_peak)->Name("f32_fma/peak");

}  // namespace

BENCHMARK_MAIN();
