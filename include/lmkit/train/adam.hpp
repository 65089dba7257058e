// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019: weight decay applied to the
// weights directly, not through the gradient), updating as PyTorch's torch.optim.AdamW does:
//   p *= 1 - lr * wd   (AdamW, parameters that decay)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Norm gains and biases do not decay unless asked (`decay_all`).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/train/parameter_list.hpp"

namespace lmkit::train {

struct adam_options {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled = true;   // true: AdamW; false: Adam with L2 added to the gradient
  bool decay_all = false;  // also decay parameters marked decay::no (norms, biases)
};

class adam {
 public:
  adam(parameter_list params, adam_options options) : params_(std::move(params)), options_(options) {
    // PyTorch's checks: a NaN or negative setting would otherwise turn every weight into NaN silently.
    require<argument_error>(std::isfinite(options.lr) && options.lr >= 0.0f, "adam: learning rate ", options.lr,
                            " is not a finite number >= 0");
    require<argument_error>(options.beta1 >= 0.0f && options.beta1 < 1.0f && options.beta2 >= 0.0f && options.beta2 < 1.0f,
                            "adam: betas (", options.beta1, ", ", options.beta2, ") are not in [0, 1)");
    require<argument_error>(std::isfinite(options.eps) && options.eps >= 0.0f, "adam: eps ", options.eps, " is not >= 0");
    require<argument_error>(std::isfinite(options.weight_decay) && options.weight_decay >= 0.0f, "adam: weight decay ",
                            options.weight_decay, " is not a finite number >= 0");
    for (const named_parameter& p : params_) {
      m_.emplace_back(p.parameter->size());
      v_.emplace_back(p.parameter->size());
    }
  }

  const adam_options& options() const { return options_; }
  const parameter_list& parameters() const { return params_; }
  std::uint64_t steps() const { return step_; }
  void set_steps(std::uint64_t n) { step_ = n; }
  /// The first and second moment of parameter i (for checkpoints).
  std::span<float> first_moment(std::size_t i) { return {m_[i].data(), m_[i].size()}; }
  std::span<float> second_moment(std::size_t i) { return {v_[i].data(), v_[i].size()}; }

  void zero_grad(const thread_pool& pool = serial_pool()) { params_.zero_grad(pool); }

  /// The optimizer's state as named tensors, PyTorch's names per parameter: visit(name, values, parameter).
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      visit("optimizer.exp_avg." + params_[i].name, first_moment(i), *params_[i].parameter);
      visit("optimizer.exp_avg_sq." + params_[i].name, second_moment(i), *params_[i].parameter);
    }
  }

  /// One update with learning rate `lr` (from a schedule; the options' lr when omitted).
  void step(float lr, const thread_pool& pool = serial_pool()) {
    require<argument_error>(std::isfinite(lr) && lr >= 0.0f, "adam: step ", step_ + 1, " has learning rate ", lr,
                            ", not a finite number >= 0");
    ++step_;
    const double correction1 = 1.0 - std::pow(static_cast<double>(options_.beta1), static_cast<double>(step_));
    const double correction2 = 1.0 - std::pow(static_cast<double>(options_.beta2), static_cast<double>(step_));
    kernels::adam_coefficients c{.beta1 = options_.beta1,
                                 .beta2 = options_.beta2,
                                 .step_size = static_cast<float>(lr / correction1),
                                 .rsqrt_correction2 = static_cast<float>(1.0 / std::sqrt(correction2)),
                                 .eps = options_.eps};
    for (std::size_t i = 0; i < params_.size(); ++i) {
      nn::parameter& p = *params_[i].parameter;
      const bool decays = options_.weight_decay != 0.0f && (p.decays() || options_.decay_all);
      const float wd = decays ? options_.weight_decay : 0.0f;
      c.shrink = options_.decoupled ? 1.0f - lr * wd : 1.0f;
      c.l2 = options_.decoupled ? 0.0f : wd;
      const std::span<float> w = p.value(), m = first_moment(i), v = second_moment(i);
      const std::span<const float> g = p.grad();
      // Fixed chunks: the same bits for any thread count.
      pool.for_each_chunk(p.size(), 1 << 15, [&](std::size_t begin, std::size_t end) {
        kernels::adam_update(w.subspan(begin, end - begin), g.subspan(begin, end - begin), m.subspan(begin, end - begin),
                             v.subspan(begin, end - begin), c);
      });
    }
  }
  void step(const thread_pool& pool = serial_pool()) { step(options_.lr, pool); }

 private:
  parameter_list params_;
  adam_options options_;
  std::vector<aligned_buffer<float>> m_, v_;
  std::uint64_t step_ = 0;
};

/// AdamW: Adam with decoupled weight decay (the default of adam_options).
inline adam adamw(parameter_list params, adam_options options) {
  options.decoupled = true;
  return adam(std::move(params), options);
}

}  // namespace lmkit::train
