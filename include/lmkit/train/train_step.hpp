// One optimizer step, the same for every model family: `accumulation` micro-batches (each a
// forward and a backward of its loss divided by `accumulation`, so the gradient is the mean's),
// clipping of the global gradient norm, then the update at the schedule's rate for this step.
// It depends only on (parameters, optimizer state, step, batch source state, the context's noise
// seed): a resumed run repeats an uninterrupted one bit for bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/nn/layer.hpp"
#include "lmkit/train/parameter_list.hpp"

namespace lmkit::train {

struct step_options {
  double clip = 0.0;              // 0: no clipping
  std::size_t accumulation = 1;   // micro-batches per step
};

struct step_report {
  float loss = 0.0f;        // mean over the micro-batches
  float lr = 0.0f;
  double grad_norm = 0.0;   // before clipping
};

/// `batches.next(ids, targets)` fills the next micro-batch of shape `batches.shape()`.
template <class Model, class Optimizer, class Schedule, class Batches>
step_report train_step(Model& model, Optimizer& optimizer, const parameter_list& params, const Schedule& schedule,
                       Batches& batches, std::uint64_t step, const step_options& options, const nn::run_context& ctx,
                       std::vector<token_id>& ids, std::vector<token_id>& targets) {
  require<argument_error>(options.clip >= 0.0 && options.clip < HUGE_VAL, "train_step: clip norm ", options.clip,
                          " is not a finite number >= 0 (0: no clipping)");
  const std::size_t micro = options.accumulation ? options.accumulation : 1;
  optimizer.zero_grad(*ctx.pool);
  double loss_sum = 0.0;
  for (std::size_t k = 0; k < micro; ++k) {
    batches.next(ids, targets);
    nn::run_context pass = ctx;  // dropout masks: a function of (noise seed, step, micro-batch)
    pass.pass = step * micro + k;
    loss_sum += model.forward(ids, targets, batches.shape(), pass);
    model.backward(pass, 1.0f / static_cast<float>(micro));
  }
  step_report report;
  report.loss = static_cast<float>(loss_sum / static_cast<double>(micro));
  report.grad_norm = options.clip > 0.0 ? clip_gradient_norm(params, options.clip) : gradient_norm(params);
  report.lr = schedule(step);
  optimizer.step(report.lr, *ctx.pool);
  return report;
}

}  // namespace lmkit::train
