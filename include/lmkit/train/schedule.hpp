// Learning-rate schedules: a function of the step (0-based) and nothing else, so a resumed run
// gets the same rates.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace lmkit::train {

/// Linear warm-up to `lr` over `warmup` steps ((step + 1) / (warmup + 1) of it, as nanoGPT), then a
/// half cosine down to `min_lr` at `decay_steps`, and `min_lr` after.
struct cosine_schedule {
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  std::uint64_t warmup = 0;
  std::uint64_t decay_steps = 1;

  float operator()(std::uint64_t step) const {
    if (step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup + 1);
    if (step > decay_steps) return min_lr;
    const double ratio = static_cast<double>(step - warmup) / static_cast<double>(decay_steps - warmup);
    const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));
    return static_cast<float>(min_lr + coeff * (lr - min_lr));
  }
};

/// Linear warm-up, then a straight line from `lr` to `min_lr` at `decay_steps`.
struct linear_schedule {
  float lr = 1e-3f;
  float min_lr = 0.0f;
  std::uint64_t warmup = 0;
  std::uint64_t decay_steps = 1;

  float operator()(std::uint64_t step) const {
    if (step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup + 1);
    if (step >= decay_steps) return min_lr;
    const double ratio = static_cast<double>(step - warmup) / static_cast<double>(decay_steps - warmup);
    return static_cast<float>(lr + ratio * (min_lr - lr));
  }
};

/// The same rate at every step.
struct constant_schedule {
  float lr = 1e-3f;
  float operator()(std::uint64_t) const { return lr; }
};

}  // namespace lmkit::train
