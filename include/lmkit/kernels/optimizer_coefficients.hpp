// The per-step constants of an Adam update, computed once per step by the optimizer.
#pragma once

namespace lmkit::kernels {

struct adam_coefficients {
  float beta1 = 0.9f, beta2 = 0.999f;
  float step_size = 1e-3f;          // lr / (1 - beta1^t)
  float rsqrt_correction2 = 1.0f;   // 1 / sqrt(1 - beta2^t)
  float eps = 1e-8f;
  float shrink = 1.0f;              // 1 - lr * weight_decay (decoupled decay), else 1
  float l2 = 0.0f;                  // weight decay added to the gradient (Adam's L2), else 0
};

}  // namespace lmkit::kernels
