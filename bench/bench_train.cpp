// Training steps of the configurations the PyTorch peers run (../shared/peers/pytorch/):
//   gpt_step/shakespeare   nanoGPT's CPU config: 4 layers, 4 heads, 128 wide, context 64, batch 12,
//                          vocab 65, AdamW, clipping at 1.0 (train_gpt_shakespeare.py)
//   gpt_step/gpt2_small    GPT-2 small's shape (12 x 12 heads x 768, vocab 50257, biases), one AdamW
//                          step at batch 4 x 256 (train_gpt2_step.py)
// at 1 and 2 threads; the counters give ms/step, the process's peak resident memory and the model
// FLOPs' rate beside the FMA roofline (model_flops.hpp, f32_fma/peak). Run
// bench/run_train.sh to get PyTorch's figures in the same sitting.
#include <benchmark/benchmark.h>

#include <vector>

#include "model_flops.hpp"
#include "step_counters.hpp"

#include "lmkit/models/gpt.hpp"
#include "lmkit/train/adam.hpp"
#include "lmkit/train/parameter_list.hpp"

namespace {

using namespace lmkit;

void gpt_step(benchmark::State& state, models::gpt_config config, nn::batch_shape shape, float clip,
              kernels::product_precision products) {
  const thread_pool pool(static_cast<int>(state.range(0)));
  const nn::run_context ctx{.pool = &pool, .training = true, .products = products};
  models::gpt<> model(config);
  model.init(seed{1});
  train::parameter_list params(model);
  train::adam optimizer(params, {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .weight_decay = 0.1f});
  philox rng(seed{2});
  std::vector<token_id> ids(shape.rows()), targets(shape.rows());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = rng() % config.vocab, targets[i] = rng() % config.vocab;
  auto step = [&] {
    optimizer.zero_grad(pool);
    const float loss = model.forward(ids, targets, shape, ctx);
    model.backward(ctx);
    if (clip > 0) train::clip_gradient_norm(params, clip);
    optimizer.step(1e-3f, pool);
    return loss;
  };
  step();  // warm-up: buffers faulted in
  for (auto _ : state) benchmark::DoNotOptimize(step());
  set_step_counters(state, shape.rows());
  lmkit_bench::set_model_flops_counters(state, lmkit_bench::gpt_step_flops(config, shape.rows(), shape.time),
                                        static_cast<int>(state.range(0)));
}

const models::gpt_config shakespeare{.vocab = 65, .context = 64, .layers = 4, .heads = 4, .dim = 128};
const models::gpt_config gpt2_small{.vocab = 50257, .context = 1024, .layers = 12, .heads = 12, .dim = 768,
                                    .bias = nn::bias::yes};
// The *_bf16 steps take the products of bf16-rounded operands (`train --products bf16`; AMX tiles
// where the CPU has them): PyTorch's autocast to bfloat16.
constexpr auto f32 = kernels::product_precision::f32, bf16 = kernels::product_precision::bf16;

BENCHMARK_CAPTURE(gpt_step, shakespeare, shakespeare, nn::batch_shape{12, 64}, 1.0f, f32)
    ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gpt_step, gpt2_small, gpt2_small, nn::batch_shape{4, 256}, 0.0f, f32)
    ->Arg(1)->Arg(2)->UseRealTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gpt_step, shakespeare_bf16, shakespeare, nn::batch_shape{12, 64}, 1.0f, bf16)
    ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gpt_step, gpt2_small_bf16, gpt2_small, nn::batch_shape{4, 256}, 0.0f, bf16)
    ->Arg(1)->Arg(2)->UseRealTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(lmkit_bench::f32_fma_peak)->Name("f32_fma/peak");

}  // namespace

BENCHMARK_MAIN();
